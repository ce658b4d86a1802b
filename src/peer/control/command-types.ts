import type { CommandName, MessageTarget, Progress, ResultOf } from '../../protocol/control.js';
import type { ErrorCode } from '../../protocol/errors.js';

/**
 * The shapes of the command table (commands.ts): a row's syntax, the words it
 * parses to, and CommandContext, what a command may do with the daemon.
 */

export type ParamKind =
  | 'user'
  | 'group'
  | 'password'
  | 'file_name'
  | 'source_path'
  | 'dest_path'
  | 'topic'
  | 'message_id'
  /** A whole number (set_versions' K, set_replication's counts); its range is the command's to check. */
  | 'count'
  /** The rest of the line: every word from here on, joined by spaces (a message). */
  | 'text'
  /** A size with a unit (50GiB, 500MiB). */
  | 'size'
  /** A number of replicas, 0 to 64. */
  | 'replicas'
  /** The rest of the line: one glob per word (select_files), joined by newlines. */
  | 'globs'
  /** set_schedule's days: mon, mon-fri, sat,sun, daily, weekdays, weekends. */
  | 'days'
  /** set_schedule's hours: HH:MM-HH:MM on 15-minute boundaries. */
  | 'hours'
  /** A schedule slot's mode: full, limited, upload-only, paused. */
  | 'slot_mode'
  /** A download: its id (show_downloads --json), or a file name for the latest download of it. */
  | 'download';

export interface ParamSpec {
  name: string;
  kind: ParamKind;
  /** A name being created: the stricter rules of names.ts isNewName. */
  creates?: true;
}

export interface ParsedArgs {
  /** Positional values by parameter name. */
  values: Record<string, string>;
  flags: Set<string>;
  /** Options with a value (`--from 5` or `--from=5`); repeated, the last one. */
  options: Record<string, string>;
  /** Every value of each option given more than once or not (`--only a --only b`), in order. */
  repeated?: Record<string, string[]>;
}

/** download_file's options beside its words. */
export type DownloadOptions = {
  wait: boolean;
  version?: number;
  only?: string[];
  exclude?: string[];
  /** This download's own limit, bytes per second (download_file --limit). */
  limitBytesPerSec?: number;
  /** No queueing: NO_SEEDERS at once when the tracker lists no live seeder. */
  noWait?: boolean;
  /** Pieces in order, the first and last ones first (media players). */
  sequential?: boolean;
} & CommandIO;

export interface CommandIO {
  onProgress?: (p: Progress) => void;
  signal?: AbortSignal;
}

/** What download_file asks beside the group, the name and the destination. */
export type DownloadRequest = DownloadOptions;

/**
 * What a command may do with the daemon, each method answering its command's
 * result of protocol/control.ts. The daemon implements it; tests may stub it.
 */
export interface CommandContext {
  status(): Promise<ResultOf<'status'>>;
  createUser(userId: string, password: string): Promise<ResultOf<'create_user'>>;
  login(userId: string, password: string): Promise<ResultOf<'login'>>;
  logout(): Promise<ResultOf<'logout'>>;
  createGroup(groupId: string): Promise<ResultOf<'create_group'>>;
  joinGroup(groupId: string): Promise<ResultOf<'join_group'>>;
  leaveGroup(groupId: string): Promise<ResultOf<'leave_group'>>;
  listGroups(): Promise<ResultOf<'list_groups'>>;
  listRequests(groupId: string): Promise<ResultOf<'list_requests'>>;
  acceptRequest(groupId: string, userId: string): Promise<ResultOf<'accept_request'>>;
  declineRequest(groupId: string, userId: string): Promise<ResultOf<'decline_request'>>;
  removeMember(groupId: string, userId: string): Promise<ResultOf<'remove_member'>>;
  listMembers(groupId: string): Promise<ResultOf<'list_members'>>;
  listFiles(groupId: string, fileName?: string): Promise<ResultOf<'list_files'>>;
  uploadFile(path: string, groupId: string, io: CommandIO): Promise<ResultOf<'upload_file'>>;
  downloadFile(
    groupId: string,
    fileName: string,
    dest: string,
    options: DownloadOptions,
  ): Promise<ResultOf<'download_file'>>;
  selectFiles(groupId: string, fileName: string, globs: string[]): Promise<ResultOf<'select_files'>>;
  updateFile(
    groupId: string,
    fileName: string,
    path: string,
    ifVersion: number | undefined,
    io: CommandIO,
  ): Promise<ResultOf<'update_file'>>;
  deleteFile(groupId: string, fileName: string): Promise<ResultOf<'delete_file'>>;
  lockFile(groupId: string, fileName: string, ttlSeconds: number | undefined): Promise<ResultOf<'lock_file'>>;
  unlockFile(groupId: string, fileName: string): Promise<ResultOf<'unlock_file'>>;
  listVersions(groupId: string, fileName: string): Promise<ResultOf<'list_versions'>>;
  setVersions(groupId: string, keep: number): Promise<ResultOf<'set_versions'>>;
  stopShare(fileName: string, groupId: string | undefined): Promise<ResultOf<'stop_share'>>;
  showDownloads(download?: string): Promise<ResultOf<'show_downloads'>>;
  /** pause_download, resume_download, cancel_download: a download by its id or file name. */
  pauseDownload(download: string): Promise<ResultOf<'pause_download'>>;
  resumeDownload(download: string): Promise<ResultOf<'resume_download'>>;
  cancelDownload(download: string): Promise<ResultOf<'cancel_download'>>;
  /** send_msg, send_group_msg and publish. */
  sendMessage(target: MessageTarget, text: string): Promise<ResultOf<'send_msg'>>;
  showMessages(filter: {
    userId?: string;
    groupId?: string;
    unread: boolean;
    /** Leaves the messages unread (the web page marks read only what it shows). */
    peek?: boolean;
    limit?: number;
  }): Promise<ResultOf<'show_messages'>>;
  markRead(messageId: string): Promise<ResultOf<'mark_read'>>;
  showSent(filter: { userId?: string; groupId?: string; limit?: number }): Promise<ResultOf<'show_sent'>>;
  messageStatus(messageId: string): Promise<ResultOf<'message_status'>>;
  createTopic(groupId: string, topic: string): Promise<ResultOf<'create_topic'>>;
  listTopics(groupId: string): Promise<ResultOf<'list_topics'>>;
  /** subscribe and unsubscribe. */
  subscribe(groupId: string, topic: string, on: boolean): Promise<ResultOf<'subscribe'>>;
  fetchMessages(
    groupId: string,
    topic: string,
    from: number | undefined,
    limit: number | undefined,
  ): Promise<ResultOf<'fetch_messages'>>;
  quit(): Promise<ResultOf<'quit'>>;
  offerStorage(groupId: string, quotaBytes: number): Promise<ResultOf<'offer_storage'>>;
  withdrawStorage(groupId: string, now: boolean): Promise<ResultOf<'withdraw_storage'>>;
  setReplication(groupId: string, min: number, max: number | undefined): Promise<ResultOf<'set_replication'>>;
  listStorage(groupId: string): Promise<ResultOf<'list_storage'>>;
  setLimits(change: { group?: string; upload?: string; download?: string }): Promise<ResultOf<'set_limits'>>;
  setSchedule(change: {
    days?: string;
    hours?: string;
    mode?: string;
    upload?: string;
    download?: string;
  }): Promise<ResultOf<'set_schedule'>>;
  showLimits(): Promise<ResultOf<'show_limits'>>;
}

export interface CommandSpec<K extends CommandName = CommandName> {
  name: K;
  /** Alternative syntaxes; the first whose arity matches wins. */
  forms: ParamSpec[][];
  flags?: string[];
  /** Options that take a value: `--name VALUE` or `--name=VALUE`. */
  options?: string[];
  summary: string;
  /** Commands that report progress accept a streamed answer. */
  streams?: boolean;
  /** A line to paste after `coterie ` (its `--help` shows it; a test runs each through the parser). */
  example?: string;
  /** The codes this command answers beside those of every command (USAGE, DAEMON_NOT_RUNNING). */
  errors?: readonly ErrorCode[];
  run(ctx: CommandContext, args: ParsedArgs, io: CommandIO): Promise<ResultOf<K>>;
}

/** One row of the table: a CommandSpec whose run answers its own command's result. */
export type AnyCommandSpec = { [K in CommandName]: CommandSpec<K> }[CommandName];
