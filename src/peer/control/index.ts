// The entry of the control API's peer side: the command table and its parsing, the daemon's
// account commands, the control server and the client of a running daemon. Light enough for
// `coterie <command>` (peer/client.ts): nothing here loads the daemon, the wire protocol or TLS.
export { type AccountDeps, createCommandContext, type FileCommands } from './account-commands.js';
export { type CallOptions, callDaemon, callDaemonAt } from './client.js';
export {
  absolutizePaths,
  aliasOf,
  COMMANDS,
  type CommandContext,
  type CommandIO,
  type CommandSpec,
  type DownloadOptions,
  type DownloadRequest,
  findCommand,
  getCommand,
  matchForm,
  type ParamKind,
  type ParamSpec,
  type ParsedArgs,
  parseArgs,
  runCommand,
  usageOf,
} from './commands.js';
export {
  asCommandRequest,
  type ControlServer,
  type ControlServerOptions,
  type ExecuteCommand,
  startControlServer,
} from './server.js';
