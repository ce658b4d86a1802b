// The light public entry of src/peer for clients of a running daemon (`coterie <command>`,
// the demo, tests): the command table, the control API client, data-directory resolution
// and the answer types. Loading it does not load the daemon, the wire protocol or TLS.

export type {
  AnswerOf,
  CommandName,
  CommandRequest,
  CommandResponse,
  ControlCommands,
  DownloadView,
  FileTree,
  InboxMessage,
  PeerContribution,
  PendingSendView,
  Progress,
  ResultOf,
  SendAnswer,
  SentView,
  ShowDownloadsResult,
  ShowMessagesResult,
  ShowSentResult,
  StatusView,
  StopShareResult,
  UploadResult,
} from '../protocol/control.js';
export {
  absolutizePaths,
  aliasOf,
  type CallOptions,
  COMMANDS,
  type CommandContext,
  type CommandIO,
  type CommandSpec,
  callDaemon,
  callDaemonAt,
  findCommand,
  getCommand,
  matchForm,
  type ParamSpec,
  type ParsedArgs,
  parseArgs,
  runCommand,
  usageOf,
} from './control/index.js';
export { type DaemonInfo, daemonFilePath, readDaemonFile } from './daemon-file.js';
export { defaultDataDir, ensureDataDir, resolveDataDir } from './data-dir.js';
export type { UiFrame } from './ui/index.js';
