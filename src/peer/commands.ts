import { isAbsolute, resolve } from 'node:path';
import { CoterieError } from '../protocol/errors.js';
import { assertName, isValidFileName } from '../protocol/names.js';
import type { Progress } from './control-protocol.js';

/**
 * The command table: one row per command, shared by the CLI (`coterie
 * <command>`), the daemon's control API and the interactive shell. A row says
 * the syntax (for parsing, `help` and completion) and how to run it against
 * the daemon's services (`CommandContext`). Output formatting lives in cli/.
 */

export type ParamKind = 'user' | 'group' | 'password' | 'file_name' | 'source_path' | 'dest_path';

export interface ParamSpec {
  name: string;
  kind: ParamKind;
}

export interface ParsedArgs {
  /** Positional values by parameter name. */
  values: Record<string, string>;
  flags: Set<string>;
}

export interface CommandIO {
  onProgress?: (p: Progress) => void;
  signal?: AbortSignal;
}

/** What a command may do with the daemon. The daemon implements it; tests may stub it. */
export interface CommandContext {
  status(): Promise<unknown>;
  createUser(userId: string, password: string): Promise<unknown>;
  login(userId: string, password: string): Promise<unknown>;
  logout(): Promise<unknown>;
  createGroup(groupId: string): Promise<unknown>;
  joinGroup(groupId: string): Promise<unknown>;
  leaveGroup(groupId: string): Promise<unknown>;
  listGroups(): Promise<unknown>;
  listRequests(groupId: string): Promise<unknown>;
  acceptRequest(groupId: string, userId: string): Promise<unknown>;
  declineRequest(groupId: string, userId: string): Promise<unknown>;
  listMembers(groupId: string): Promise<unknown>;
  listFiles(groupId: string): Promise<unknown>;
  uploadFile(path: string, groupId: string, io: CommandIO): Promise<unknown>;
  downloadFile(
    groupId: string,
    fileName: string,
    dest: string,
    options: { wait: boolean } & CommandIO,
  ): Promise<unknown>;
  stopShare(fileName: string, groupId: string | undefined): Promise<unknown>;
  showDownloads(): Promise<unknown>;
  quit(): Promise<unknown>;
}

export interface CommandSpec {
  name: string;
  /** Alternative syntaxes; the first whose arity matches wins. */
  forms: ParamSpec[][];
  flags?: string[];
  summary: string;
  /** Commands that report progress accept a streamed answer. */
  streams?: boolean;
  run(ctx: CommandContext, args: ParsedArgs, io: CommandIO): Promise<unknown>;
}

const p = (name: string, kind: ParamKind): ParamSpec => ({ name, kind });
const USER = p('user_id', 'user');
const GROUP = p('group_id', 'group');

export const COMMANDS: readonly CommandSpec[] = [
  {
    name: 'create_user',
    forms: [[USER, p('password', 'password')]],
    summary: "creates an account on the tracker ('-' reads the password from stdin)",
    run: (c, a) => c.createUser(a.values.user_id!, a.values.password!),
  },
  {
    name: 'login',
    forms: [[USER, p('password', 'password')]],
    summary: "logs in; the session survives restarts until logout ('-' reads the password from stdin)",
    run: (c, a) => c.login(a.values.user_id!, a.values.password!),
  },
  { name: 'logout', forms: [[]], summary: 'logs out and stops sharing', run: (c) => c.logout() },
  {
    name: 'create_group',
    forms: [[GROUP]],
    summary: 'creates a group you own',
    run: (c, a) => c.createGroup(a.values.group_id!),
  },
  {
    name: 'join_group',
    forms: [[GROUP]],
    summary: "asks a group's owner to let you in",
    run: (c, a) => c.joinGroup(a.values.group_id!),
  },
  {
    name: 'leave_group',
    forms: [[GROUP]],
    summary: 'leaves a group',
    run: (c, a) => c.leaveGroup(a.values.group_id!),
  },
  { name: 'list_groups', forms: [[]], summary: 'lists every group', run: (c) => c.listGroups() },
  {
    name: 'list_requests',
    forms: [[GROUP]],
    summary: 'lists pending join requests (owner only)',
    run: (c, a) => c.listRequests(a.values.group_id!),
  },
  {
    name: 'accept_request',
    forms: [[GROUP, USER]],
    summary: 'admits a user into your group (owner only)',
    run: (c, a) => c.acceptRequest(a.values.group_id!, a.values.user_id!),
  },
  {
    name: 'decline_request',
    forms: [[GROUP, USER]],
    summary: "declines a user's join request (owner only)",
    run: (c, a) => c.declineRequest(a.values.group_id!, a.values.user_id!),
  },
  {
    name: 'list_members',
    forms: [[GROUP]],
    summary: "lists a group's members (members only)",
    run: (c, a) => c.listMembers(a.values.group_id!),
  },
  {
    name: 'list_files',
    forms: [[GROUP]],
    summary: "lists a group's files and how many peers share each (members only)",
    run: (c, a) => c.listFiles(a.values.group_id!),
  },
  {
    name: 'upload_file',
    forms: [[p('path', 'source_path'), GROUP]],
    summary: 'hashes a file, shares it with a group and starts seeding it',
    streams: true,
    run: (c, a, io) => c.uploadFile(a.values.path!, a.values.group_id!, io),
  },
  {
    name: 'download_file',
    forms: [[GROUP, p('file_name', 'file_name'), p('dest', 'dest_path')]],
    flags: ['wait'],
    summary: 'downloads a file of a group to dest; --wait blocks until it ends',
    streams: true,
    run: (c, a, io) =>
      c.downloadFile(a.values.group_id!, a.values.file_name!, a.values.dest!, {
        ...io,
        wait: a.flags.has('wait'),
      }),
  },
  {
    name: 'stop_share',
    forms: [[GROUP, p('file_name', 'file_name')], [p('file_name', 'file_name')]],
    summary: 'stops sharing a file in a group (or in every group when no group is given)',
    run: (c, a) => c.stopShare(a.values.file_name!, a.values.group_id),
  },
  {
    name: 'show_downloads',
    forms: [[]],
    summary: 'shows ongoing (percent, rate, peers), completed and failed downloads',
    run: (c) => c.showDownloads(),
  },
  {
    name: 'status',
    forms: [[]],
    summary: 'shows the peer id, the user and the tracker connection',
    run: (c) => c.status(),
  },
  {
    name: 'quit',
    forms: [[]],
    summary: 'stops the daemon (downloads pause and resume at the next start)',
    run: (c) => c.quit(),
  },
];

const BY_NAME = new Map(COMMANDS.map((c) => [c.name, c]));

export function findCommand(name: string): CommandSpec | undefined {
  return BY_NAME.get(name);
}

export function usageOf(spec: CommandSpec): string {
  const flags = (spec.flags ?? []).map((f) => ` [--${f}]`).join('');
  return spec.forms
    .map((form) => [spec.name, ...form.map((x) => `<${x.name}>`)].join(' ') + flags)
    .join(' | ');
}

export function getCommand(name: string): CommandSpec {
  const spec = findCommand(name);
  if (spec === undefined) {
    throw new CoterieError('UNKNOWN_COMMAND', `unknown command '${name}': type 'help' for the list`);
  }
  return spec;
}

function checkValue(param: ParamSpec, value: string): void {
  switch (param.kind) {
    case 'user':
      assertName('user id', value);
      return;
    case 'group':
      assertName('group id', value);
      return;
    case 'file_name':
      if (!isValidFileName(value)) {
        throw new CoterieError(
          'INVALID_NAME',
          `invalid file name ${JSON.stringify(value)}: no slashes or control characters`,
        );
      }
      return;
    case 'password':
      if (value.length === 0) throw new CoterieError('USAGE', 'the password is empty');
      return;
    case 'source_path':
    case 'dest_path':
      if (value.length === 0) throw new CoterieError('PATH_INVALID', `empty ${param.name}`);
      return;
  }
}

/** Checks the words of a command against its table row; throws USAGE / INVALID_NAME. */
export function parseArgs(spec: CommandSpec, words: readonly string[]): ParsedArgs {
  const flags = new Set<string>();
  const positional: string[] = [];
  for (const w of words) {
    if (w.startsWith('--') && w.length > 2) {
      const flag = w.slice(2);
      if (!(spec.flags ?? []).includes(flag)) {
        throw new CoterieError('USAGE', `unknown option ${w} for ${spec.name}: usage: ${usageOf(spec)}`);
      }
      flags.add(flag);
    } else positional.push(w);
  }
  const form = spec.forms.find((f) => f.length === positional.length);
  if (form === undefined) throw new CoterieError('USAGE', `usage: ${usageOf(spec)}`);
  const values: Record<string, string> = {};
  form.forEach((param, i) => {
    const value = positional[i]!;
    checkValue(param, value);
    values[param.name] = value;
  });
  return { values, flags };
}

/** The parameters of the form the words match (for path resolution and stdin passwords). */
export function matchForm(spec: CommandSpec, words: readonly string[]): ParamSpec[] | undefined {
  const n = words.filter((w) => !(w.startsWith('--') && w.length > 2)).length;
  return spec.forms.find((f) => f.length === n);
}

/**
 * Rewrites path arguments as absolute paths against `cwd`: the CLI runs in
 * the user's directory, the daemon elsewhere.
 */
export function absolutizePaths(spec: CommandSpec, words: readonly string[], cwd: string): string[] {
  const form = matchForm(spec, words);
  if (form === undefined) return [...words];
  let i = 0;
  return words.map((w) => {
    if (w.startsWith('--') && w.length > 2) return w;
    const param = form[i++];
    if ((param?.kind === 'source_path' || param?.kind === 'dest_path') && w !== '' && !isAbsolute(w)) {
      return resolve(cwd, w);
    }
    return w;
  });
}

/** Runs one command against a context: parse, check, dispatch. */
export async function runCommand(
  ctx: CommandContext,
  name: string,
  words: readonly string[],
  io: CommandIO = {},
): Promise<unknown> {
  const spec = getCommand(name);
  return spec.run(ctx, parseArgs(spec, words), io);
}
