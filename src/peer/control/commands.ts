import type { AnswerOf } from '../../protocol/control.js';
import { CoterieError } from '../../protocol/errors.js';
import { assertName } from '../../protocol/names.js';
import { parseRate } from '../../protocol/rates.js';
import type {
  AnyCommandSpec,
  CommandContext,
  CommandIO,
  ParamKind,
  ParamSpec,
  ParsedArgs,
} from './command-types.js';
import { numberOption, parseArgs } from './command-words.js';
import { DOWNLOAD_COMMANDS } from './download-commands.js';
import { LIMIT_COMMANDS } from './limit-commands.js';
import { STORAGE_COMMANDS } from './storage-commands.js';
import { FILE_VERSION_COMMANDS } from './version-commands.js';

export type {
  AnyCommandSpec,
  CommandContext,
  CommandIO,
  CommandSpec,
  DownloadOptions,
  DownloadRequest,
  ParamKind,
  ParamSpec,
  ParsedArgs,
} from './command-types.js';
export { absolutizePaths, matchForm, parseArgs, usageOf } from './command-words.js';

/**
 * The command table: one row per command, shared by the CLI (`coterie
 * <command>`), the daemon's control API and the interactive shell. A row says
 * the syntax (for parsing, `help` and completion) and how to run it against
 * the daemon's services (`CommandContext`). Output formatting lives in cli/.
 */

const p = (name: string, kind: ParamKind): ParamSpec => ({ name, kind });
const USER = p('user_id', 'user');
const GROUP = p('group_id', 'group');
const TOPIC = p('topic', 'topic');
const TEXT = p('message', 'text');

/** show_messages' and show_sent's words: one user's conversation, or --group G's channel, and --limit N. */
function conversationOf(
  command: string,
  a: ParsedArgs,
): { userId?: string; groupId?: string; limit?: number } {
  const groupId = a.options.group;
  if (groupId !== undefined) assertName('group id', groupId);
  if (groupId !== undefined && a.values.user_id !== undefined) {
    throw new CoterieError('USAGE', `${command} takes a user id or --group, not both`);
  }
  return {
    ...(a.values.user_id === undefined ? {} : { userId: a.values.user_id }),
    ...(groupId === undefined ? {} : { groupId }),
    ...(a.options.limit === undefined ? {} : { limit: numberOption(a, 'limit', 1) }),
  };
}

export const COMMANDS: readonly AnyCommandSpec[] = [
  {
    name: 'create_user',
    forms: [[{ ...USER, creates: true }, p('password', 'password')]],
    summary: "creates an account on the tracker ('-' reads the password from stdin)",
    example: 'create_user alice -',
    errors: ['USER_EXISTS', 'INVALID_NAME', 'RATE_LIMITED', 'TRACKER_UNAVAILABLE'],
    run: (c, a) => c.createUser(a.values.user_id!, a.values.password!),
  },
  {
    name: 'login',
    forms: [[USER, p('password', 'password')]],
    summary: "logs in; the session survives restarts until logout ('-' reads the password from stdin)",
    example: 'login alice -',
    errors: ['BAD_CREDENTIALS', 'RATE_LIMITED', 'TRACKER_UNAVAILABLE'],
    run: (c, a) => c.login(a.values.user_id!, a.values.password!),
  },
  {
    name: 'logout',
    forms: [[]],
    summary: 'logs out and stops sharing',
    example: 'logout',
    errors: ['NOT_LOGGED_IN'],
    run: (c) => c.logout(),
  },
  {
    name: 'create_group',
    forms: [[{ ...GROUP, creates: true }]],
    summary: 'creates a group you own',
    example: 'create_group photos',
    errors: ['GROUP_EXISTS', 'INVALID_NAME', 'NOT_LOGGED_IN', 'TRACKER_UNAVAILABLE'],
    run: (c, a) => c.createGroup(a.values.group_id!),
  },
  {
    name: 'join_group',
    forms: [[GROUP]],
    summary: "asks a group's owner to let you in",
    example: 'join_group photos',
    errors: ['GROUP_NOT_FOUND', 'ALREADY_MEMBER', 'NOT_LOGGED_IN', 'TRACKER_UNAVAILABLE'],
    run: (c, a) => c.joinGroup(a.values.group_id!),
  },
  {
    name: 'leave_group',
    forms: [[GROUP]],
    summary: 'leaves a group',
    example: 'leave_group photos',
    errors: ['GROUP_NOT_FOUND', 'NOT_A_MEMBER', 'NOT_LOGGED_IN', 'TRACKER_UNAVAILABLE'],
    run: (c, a) => c.leaveGroup(a.values.group_id!),
  },
  {
    name: 'list_groups',
    forms: [[]],
    summary: 'lists every group',
    example: 'list_groups',
    errors: ['NOT_LOGGED_IN', 'TRACKER_UNAVAILABLE'],
    run: (c) => c.listGroups(),
  },
  {
    name: 'list_requests',
    forms: [[GROUP]],
    summary: 'lists pending join requests (owner only)',
    example: 'list_requests photos',
    errors: ['GROUP_NOT_FOUND', 'NOT_OWNER', 'NOT_LOGGED_IN', 'TRACKER_UNAVAILABLE'],
    run: (c, a) => c.listRequests(a.values.group_id!),
  },
  {
    name: 'accept_request',
    forms: [[GROUP, USER]],
    summary: 'admits a user into your group (owner only)',
    example: 'accept_request photos bob',
    errors: ['GROUP_NOT_FOUND', 'NOT_OWNER', 'REQUEST_NOT_FOUND', 'NOT_LOGGED_IN', 'TRACKER_UNAVAILABLE'],
    run: (c, a) => c.acceptRequest(a.values.group_id!, a.values.user_id!),
  },
  {
    name: 'decline_request',
    forms: [[GROUP, USER]],
    summary: "declines a user's join request (owner only)",
    example: 'decline_request photos bob',
    errors: ['GROUP_NOT_FOUND', 'NOT_OWNER', 'REQUEST_NOT_FOUND', 'NOT_LOGGED_IN', 'TRACKER_UNAVAILABLE'],
    run: (c, a) => c.declineRequest(a.values.group_id!, a.values.user_id!),
  },
  {
    name: 'remove_member',
    forms: [[GROUP, USER]],
    summary: 'removes a member from your group and revokes their download tickets at once (owner only)',
    example: 'remove_member photos bob',
    errors: ['GROUP_NOT_FOUND', 'NOT_OWNER', 'NOT_A_MEMBER', 'NOT_LOGGED_IN', 'TRACKER_UNAVAILABLE'],
    run: (c, a) => c.removeMember(a.values.group_id!, a.values.user_id!),
  },
  {
    name: 'list_members',
    forms: [[GROUP]],
    summary: "lists a group's members (members only)",
    example: 'list_members photos',
    errors: ['GROUP_NOT_FOUND', 'NOT_A_MEMBER', 'NOT_LOGGED_IN', 'TRACKER_UNAVAILABLE'],
    run: (c, a) => c.listMembers(a.values.group_id!),
  },
  {
    name: 'list_files',
    forms: [[GROUP], [GROUP, p('file_name', 'file_name')]],
    summary:
      "lists a group's files and how many peers share each; with a name, that share's files (a folder's tree) with sizes",
    example: 'list_files photos holiday-2026',
    errors: [
      'GROUP_NOT_FOUND',
      'FILE_NOT_FOUND',
      'INVALID_MANIFEST',
      'NOT_A_MEMBER',
      'NOT_LOGGED_IN',
      'TRACKER_UNAVAILABLE',
    ],
    run: (c, a) => c.listFiles(a.values.group_id!, a.values.file_name),
  },
  {
    name: 'upload_file',
    forms: [[p('path', 'source_path'), GROUP]],
    summary: 'hashes a file or a folder (one share of its whole tree), shares it with a group and seeds it',
    streams: true,
    example: 'upload_file ./holiday.jpg photos',
    errors: [
      'PATH_INVALID',
      'FILE_NAME_TAKEN',
      'NOT_A_MEMBER',
      'GROUP_NOT_FOUND',
      'NOT_LOGGED_IN',
      'TRACKER_UNAVAILABLE',
    ],
    run: (c, a, io) => c.uploadFile(a.values.path!, a.values.group_id!, io),
  },
  {
    name: 'download_file',
    forms: [[GROUP, p('file_name', 'file_name'), p('dest', 'dest_path')]],
    flags: ['wait', 'no-wait', 'sequential'],
    options: ['version', 'only', 'exclude', 'limit'],
    summary:
      "downloads a file of a group to dest (its current version, or --version N); a folder's files matching --only GLOB, not --exclude GLOB (each repeatable); --limit RATE caps it (20MiB/s); with no seeder online it waits for one (--no-wait: NO_SEEDERS at once); --sequential fetches pieces in order, first and last first; --wait blocks until it ends",
    streams: true,
    example: 'download_file photos holiday.jpg ./holiday.jpg --wait',
    errors: [
      'FILE_NOT_FOUND',
      'VERSION_NOT_FOUND',
      'NO_SEEDERS',
      'DESTINATION_EXISTS',
      'PATH_INVALID',
      'DISK_FULL',
      'DOWNLOAD_FAILED',
      'INVALID_MANIFEST',
      'NOT_A_MEMBER',
      'NOT_LOGGED_IN',
      'TRACKER_UNAVAILABLE',
    ],
    run: (c, a, io) => {
      const version = numberOption(a, 'version', 1);
      const limit = a.options.limit === undefined ? undefined : parseRate(a.options.limit, '--limit');
      return c.downloadFile(a.values.group_id!, a.values.file_name!, a.values.dest!, {
        ...io,
        wait: a.flags.has('wait'),
        ...(version === undefined ? {} : { version }),
        ...(limit === undefined ? {} : { limitBytesPerSec: limit }),
        only: a.repeated?.only ?? [],
        exclude: a.repeated?.exclude ?? [],
        noWait: a.flags.has('no-wait'),
        sequential: a.flags.has('sequential'),
      });
    },
  },
  {
    name: 'select_files',
    forms: [[GROUP, p('file_name', 'file_name'), p('globs', 'globs')]],
    summary:
      "adds a folder's files matching the globs to its latest download (the same download: resumed, or restarted when it ended)",
    example: "select_files photos holiday-2026 'raw/**'",
    errors: [
      'FILE_NOT_FOUND',
      'INVALID_MANIFEST',
      'DESTINATION_EXISTS',
      'NOT_A_MEMBER',
      'NOT_LOGGED_IN',
      'TRACKER_UNAVAILABLE',
    ],
    run: (c, a) => c.selectFiles(a.values.group_id!, a.values.file_name!, a.values.globs!.split('\n')),
  },
  ...FILE_VERSION_COMMANDS,
  {
    name: 'stop_share',
    forms: [[GROUP, p('file_name', 'file_name')], [p('file_name', 'file_name')]],
    summary: 'stops sharing a file in a group (or in every group when no group is given)',
    example: 'stop_share photos holiday.jpg',
    errors: ['NOT_SHARING', 'INVALID_NAME', 'NOT_LOGGED_IN', 'TRACKER_UNAVAILABLE'],
    run: (c, a) => c.stopShare(a.values.file_name!, a.values.group_id),
  },
  {
    name: 'show_downloads',
    forms: [[], [{ name: 'download', kind: 'download' }]],
    summary:
      "shows ongoing (percent, rate, peers), completed and failed downloads; with one (its id or file name): each peer's state and the pieces nobody online has, or once it ended how its pieces were assigned",
    example: 'show_downloads',
    errors: ['DOWNLOAD_NOT_FOUND'],
    run: (c, a) => c.showDownloads(a.values.download),
  },
  ...DOWNLOAD_COMMANDS,
  {
    name: 'send_msg',
    forms: [[USER, TEXT]],
    summary: 'sends a direct message (delivered when the user comes online); prints its id',
    example: 'send_msg bob see you at 8',
    errors: ['USER_NOT_FOUND', 'MESSAGE_TOO_LARGE', 'NOT_LOGGED_IN', 'TRACKER_UNAVAILABLE'],
    run: (c, a) => c.sendMessage({ to: a.values.user_id! }, a.values.message!),
  },
  {
    name: 'send_group_msg',
    forms: [[GROUP, TEXT]],
    summary: "sends a message to a group's channel (members only); prints its id",
    example: 'send_group_msg photos new pictures are up',
    errors: ['GROUP_NOT_FOUND', 'NOT_A_MEMBER', 'MESSAGE_TOO_LARGE', 'NOT_LOGGED_IN', 'TRACKER_UNAVAILABLE'],
    run: (c, a) => c.sendMessage({ groupId: a.values.group_id! }, a.values.message!),
  },
  {
    name: 'show_messages',
    forms: [[], [USER]],
    flags: ['unread', 'peek'],
    options: ['group', 'limit'],
    summary:
      "shows received messages (all, one user's, or --group G's); --unread: new ones, oldest first, N at a time (50); marks them read (--peek: leaves them unread)",
    example: 'show_messages --unread --limit 20',
    errors: ['NOT_LOGGED_IN'],
    run: (c, a) =>
      c.showMessages({
        ...conversationOf('show_messages', a),
        unread: a.flags.has('unread'),
        peek: a.flags.has('peek'),
      }),
  },
  {
    name: 'mark_read',
    forms: [[p('message_id', 'message_id')]],
    summary: 'marks a received message and the earlier ones of its conversation read (tells the sender)',
    example: 'mark_read 0190c6a2e4f87b21a3c4d5e6f7a8b9c0',
    errors: ['MESSAGE_NOT_FOUND', 'NOT_LOGGED_IN'],
    run: (c, a) => c.markRead(a.values.message_id!),
  },
  {
    name: 'show_sent',
    forms: [[], [USER]],
    options: ['group', 'limit'],
    summary:
      'shows direct and group messages you sent, newest first (all, to one user, or to --group G), each pending, sent, delivered or read',
    example: 'show_sent bob --limit 20',
    errors: ['NOT_LOGGED_IN'],
    run: (c, a) => c.showSent(conversationOf('show_sent', a)),
  },
  {
    name: 'message_status',
    forms: [[p('message_id', 'message_id')]],
    summary: 'shows whether a message you sent is sent, delivered or read (per recipient in a group)',
    example: 'message_status 0123456789abcdef0123456789abcdef',
    errors: ['MESSAGE_NOT_FOUND', 'NOT_LOGGED_IN', 'TRACKER_UNAVAILABLE'],
    run: (c, a) => c.messageStatus(a.values.message_id!),
  },
  {
    name: 'create_topic',
    forms: [[GROUP, { ...TOPIC, creates: true }]],
    summary: 'creates a topic in a group (keeps 10,000 messages or 30 days)',
    example: 'create_topic photos releases',
    errors: [
      'TOPIC_EXISTS',
      'GROUP_NOT_FOUND',
      'NOT_A_MEMBER',
      'INVALID_NAME',
      'NOT_LOGGED_IN',
      'TRACKER_UNAVAILABLE',
    ],
    run: (c, a) => c.createTopic(a.values.group_id!, a.values.topic!),
  },
  {
    name: 'list_topics',
    forms: [[GROUP]],
    summary: "lists a group's topics and whether you subscribe",
    example: 'list_topics photos',
    errors: ['GROUP_NOT_FOUND', 'NOT_A_MEMBER', 'NOT_LOGGED_IN', 'TRACKER_UNAVAILABLE'],
    run: (c, a) => c.listTopics(a.values.group_id!),
  },
  {
    name: 'publish',
    forms: [[GROUP, TOPIC, TEXT]],
    summary: 'publishes a message to a topic; subscribers get it pushed',
    example: 'publish photos releases version 2 is out',
    errors: ['TOPIC_NOT_FOUND', 'NOT_A_MEMBER', 'MESSAGE_TOO_LARGE', 'NOT_LOGGED_IN', 'TRACKER_UNAVAILABLE'],
    run: (c, a) => c.sendMessage({ groupId: a.values.group_id!, topic: a.values.topic! }, a.values.message!),
  },
  {
    name: 'subscribe',
    forms: [[GROUP, TOPIC]],
    summary:
      "subscribes to a topic: what is published from now on is pushed (and caught up after you're back)",
    example: 'subscribe photos releases',
    errors: ['TOPIC_NOT_FOUND', 'NOT_A_MEMBER', 'NOT_LOGGED_IN', 'TRACKER_UNAVAILABLE'],
    run: (c, a) => c.subscribe(a.values.group_id!, a.values.topic!, true),
  },
  {
    name: 'unsubscribe',
    forms: [[GROUP, TOPIC]],
    summary: 'stops the pushes of a topic',
    example: 'unsubscribe photos releases',
    errors: ['TOPIC_NOT_FOUND', 'NOT_A_MEMBER', 'NOT_LOGGED_IN', 'TRACKER_UNAVAILABLE'],
    run: (c, a) => c.subscribe(a.values.group_id!, a.values.topic!, false),
  },
  {
    name: 'fetch_messages',
    forms: [[GROUP, TOPIC]],
    options: ['from', 'limit'],
    summary:
      "fetches a topic's retained messages from sequence number SEQ (default 1), at most N (default 100)",
    example: 'fetch_messages photos releases --from 1 --limit 50',
    errors: ['TOPIC_NOT_FOUND', 'NOT_A_MEMBER', 'NOT_LOGGED_IN', 'TRACKER_UNAVAILABLE'],
    run: (c, a) =>
      c.fetchMessages(
        a.values.group_id!,
        a.values.topic!,
        numberOption(a, 'from', 1),
        numberOption(a, 'limit', 1),
      ),
  },
  ...STORAGE_COMMANDS,
  ...LIMIT_COMMANDS,
  {
    name: 'status',
    forms: [[]],
    summary: 'shows the peer id, the user and the tracker connection',
    example: 'status',
    errors: [],
    run: (c) => c.status(),
  },
  {
    name: 'quit',
    forms: [[]],
    summary: 'stops the daemon (downloads pause and resume at the next start)',
    example: 'quit',
    errors: [],
    run: (c) => c.quit(),
  },
];

const BY_NAME = new Map<string, AnyCommandSpec>(COMMANDS.map((c) => [c.name, c]));

/** A command by its name or its kebab-case alias (`download-file` for `download_file`). */
export function findCommand(name: string): AnyCommandSpec | undefined {
  return BY_NAME.get(name) ?? BY_NAME.get(name.replaceAll('-', '_'));
}

/** The kebab-case alias of a command, beside the seed's snake_case name. */
export function aliasOf(name: string): string {
  return name.replaceAll('_', '-');
}

export function getCommand(name: string): AnyCommandSpec {
  const spec = findCommand(name);
  if (spec === undefined) {
    throw new CoterieError('UNKNOWN_COMMAND', `unknown command '${name}': type 'help' for the list`);
  }
  return spec;
}

/** Runs one command against a context: parse, check, dispatch. */
export async function runCommand<N extends string>(
  ctx: CommandContext,
  name: N,
  words: readonly string[],
  io: CommandIO = {},
): Promise<AnswerOf<N>> {
  const spec = getCommand(name);
  return (await spec.run(ctx, parseArgs(spec, words), io)) as AnswerOf<N>;
}
