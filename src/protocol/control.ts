import type * as Api from './api.js';
import type { ReachView } from './control-reach.js';
import type { ErrorBody } from './errors.js';
import type { TransferPeer } from './peer-events.js';

/**
 * The local control API between `coterie <command>` and its daemon, on
 * 127.0.0.1 only, guarded by the bearer token of DIR/daemon.json.
 *
 *   POST /v1/command  {name, args, stream?}
 *     → 200 {ok: true, result}  or  4xx/5xx {ok: false, error: {code, message}}
 *     with stream: true the body is NDJSON: zero or more {progress} lines, then
 *     the final {ok, …} line (progress bars for hashing and `download_file --wait`).
 */
export const CONTROL_PATH = '/v1/command';
/**
 * Commands are a name and a few words, or a message (at most 64 KiB by
 * default, with room for JSON escapes): anything larger is not ours.
 */
export const MAX_CONTROL_BODY_BYTES = 192 * 1024;

export interface CommandRequest {
  name: string;
  args: string[];
  stream?: boolean;
}

/** A progress report of a long command (hashing a file, a download). */
export interface Progress {
  kind: 'hash' | 'download';
  label: string;
  doneBytes: number;
  totalBytes: number;
  /** Bytes per second over the last few seconds. */
  rateBytesPerSec?: number;
  peers?: number;
}

export type CommandResponse<R = unknown> = { ok: true; result: R } | ({ ok: false } & ErrorBody);
export type StreamLine = { progress: Progress } | CommandResponse;

/**
 * What the file and message commands answer: plain JSON, the same for `--json`, the shell
 * and the formatter in cli/format.ts.
 */
export interface PeerContribution {
  peerId: string;
  userId: string | null;
  pieces: number;
  bytes: number;
}

/**
 * `waiting`: no live seeder yet; it starts by itself when the tracker pushes one. `paused`: by
 * pause_download (or, while active, until the tracker answers). `cancelled`: its part file is gone.
 */
export type DownloadState = 'active' | 'waiting' | 'paused' | 'completed' | 'failed' | 'cancelled';

/** What the peer records of a download (peer.db's downloads table) and shows of it. */
export interface DownloadFields {
  id: number;
  groupId: string;
  fileName: string;
  fileId: string;
  dest: string;
  size: number;
  state: DownloadState;
  doneBytes: number;
  error: string | null;
  startedAt: number;
  endedAt: number | null;
}

export interface DownloadView extends DownloadFields {
  /** Over the last few seconds while active; the average once completed. */
  rateBytesPerSec: number;
  /** Peers connected right now (active), or that contributed (completed). */
  peers: number;
  /** Who served which share of the pieces (known while the daemon ran the download). */
  contributions?: PeerContribution[];
}

export interface UploadResult {
  groupId: string;
  fileName: string;
  fileId: string;
  size: number;
  pieces: number;
  pieceSize: number;
  path: string;
  /** False when this content was already listed under this name in the group. */
  created: boolean;
  /** A folder share: its number of files. */
  files?: number;
}

/**
 * list_files with a file name: that share's files (a folder's tree, in path
 * order; a single file is one entry named as the share).
 */
export interface FileTree {
  groupId: string;
  name: string;
  fileId: string;
  size: number;
  folder: boolean;
  files: { path: string; size: number; executable?: true }[];
}

/** What update_file answers: the new version, shared and seeded by this peer. */
export interface UpdateResult {
  groupId: string;
  fileName: string;
  fileId: string;
  /** The name's version this content is now. */
  version: number;
  size: number;
  pieces: number;
  path: string;
  /** False when this content already was the current version. */
  created: boolean;
  /** File ids of the versions the group's retention dropped with this update. */
  dropped: string[];
}

export interface StopShareResult {
  stopped: { groupId: string; fileName: string }[];
}

export interface ShowDownloadsResult {
  downloads: DownloadView[];
  /** show_downloads <download>: why it is not at 100 % (running), or how its pieces were assigned (ended). */
  detail?: DownloadDetail;
}

/**
 * One download looked into ("why not 100 %"): while it runs, each peer with
 * its address, score, pieces served, rate and state (connected, busy,
 * stalled, banned with its reason) and the missing pieces nobody online has;
 * once it ended in this daemon, the seed's chunk-assignment analysis.
 */
export interface DownloadDetail {
  id: number;
  peers?: TransferPeer[];
  /** Missing pieces that no connected peer has, as ranges (`[first, last]`), and how many. */
  unreachable?: { count: number; ranges: [number, number][] };
  analysis?: AssignmentAnalysis;
}

/** How the pieces of a finished download were spread over its peers, under the rule's α and β. */
export interface AssignmentAnalysis {
  alpha: number;
  beta: number;
  fetchedPieces: number;
  resumedPieces: number;
  /** Pieces per contributing peer: the most, the fewest and the mean. */
  max: number;
  min: number;
  mean: number;
  peers: {
    peerId: string;
    userId: string | null;
    pieces: number;
    score: number;
    state: string;
    banReason?: string;
  }[];
  /** How many peers got each number of pieces ("2 peers got 6 pieces"). */
  byPieces: { pieces: number; peers: number }[];
  /** Peers and the pieces they served by score band (rounded to 0.05). */
  byScore: { score: number; peers: number; pieces: number }[];
}

/** What send_msg, send_group_msg and publish answer (`--json`: `id` and `state` first). */
export interface SentView {
  id: string;
  state: 'sent';
  streamId: string;
  seq: number;
  to?: string;
  groupId?: string;
  topic?: string;
  /** True when the tracker had stored this send before (a retry). */
  duplicate: boolean;
}

/** A send no tracker answered: kept in the outbox, sent with its client id when one answers. */
export interface PendingSendView {
  id: null;
  state: 'pending';
  clientId: string;
  streamId: string;
  to?: string;
  groupId?: string;
  topic?: string;
}

export type SendAnswer = SentView | PendingSendView;

export interface ShowMessagesResult {
  /** The user the messages were sent to. */
  me: string;
  messages: InboxMessage[];
  /** With --unread: how many unread ones are left after this page. */
  unreadLeft?: number;
}

/** A received message as stored and shown. */
export interface InboxMessage {
  messageId: string;
  streamId: string;
  seq: number;
  kind: 'direct' | 'group' | 'topic';
  sender: string;
  to: string | null;
  groupId: string | null;
  topic: string | null;
  body: string;
  sentAt: number;
  receivedAt: number;
  readAt: number | null;
}

/** What `mark_read` answers: the conversation (stream) now read up to `seq`. */
export interface MarkReadResult {
  streamId: string;
  seq: number;
}

/** What `show_sent` answers: messages this user sent (newest first), with how far their readers got. */
export interface ShowSentResult {
  me: string;
  messages: SentMessage[];
}

/** A direct or group message this user sent, as the outbox keeps it. */
export interface SentMessage {
  /** Null while no tracker answered (pending; sent with its client id when one does). */
  messageId: string | null;
  clientId: string;
  streamId: string;
  seq: number | null;
  kind: 'direct' | 'group';
  to: string | null;
  groupId: string | null;
  body: string;
  sentAt: number;
  /**
   * pending, sent (stored by the tracker), delivered (a reader's peer has it), read (shown to
   * a reader): for a group message, the furthest any member got (see deliveredTo and readBy).
   */
  mark: 'pending' | 'sent' | 'delivered' | 'read';
  /** Readers whose receipts cover this message. */
  deliveredTo: string[];
  readBy: string[];
}

/** A pushed or fetched message as the inbox keeps it, before it is stored (no receivedAt, readAt yet). */
export function inboxFields(m: Api.StoredMessage): Omit<InboxMessage, 'receivedAt' | 'readAt'> {
  return {
    messageId: m.messageId,
    streamId: m.streamId,
    seq: m.seq,
    kind: m.kind,
    sender: m.sender,
    to: m.to ?? null,
    groupId: m.groupId ?? null,
    topic: m.topic ?? null,
    body: m.body,
    sentAt: m.sentAt,
  };
}

/** A share no longer seeded because its file changed since it was shared. */
export interface ChangedShareView {
  fileName: string;
  path: string;
  reason: string;
  /** The notice's text, as the daemon told it. */
  message: string;
}

/** What `status` answers. */
export interface StatusView {
  peerId: string;
  /** Where the piece server listens. */
  serving: { host: string; port: number };
  userId: string | null;
  /** The tracker the session is connected to, if any. */
  tracker: string | null;
  /** The session's state: idle, connecting, connected… */
  session: string;
  trackers: readonly string[];
  changedShares: ChangedShareView[];
  /** On a peer that offers storage or holds replicas (issue 16). */
  storage?: StorageStatus;
  /** Whether the tracker could dial this peer back, and the relay it holds a reservation on (issue 19). */
  reach?: ReachView;
  /** The bandwidth limits and the schedule slot in force (issue 17). */
  limits?: LimitsView;
}

export type { PortMappingView, ReachView } from './control-reach.js';

/** A storage peer's side of `status`: its offers, what it holds, what it fetches, the scrub. */
export interface StorageStatus {
  offers: { groupId: string; quotaBytes: number; zone: string }[];
  /** Verified replicas held, and their bytes. */
  replicas: number;
  bytes: number;
  /** Replicas being fetched (placements and repairs). */
  fetching: { groupId: string; fileId: string; size: number; doneBytes: number }[];
  scrub?: { passes: number; checking: string | null; lastPassAt: number | null };
}

/** Bandwidth limits in bytes per second; 0 is unlimited. */
export interface RateLimitsView {
  uploadBytesPerSec: number;
  downloadBytesPerSec: number;
}

/** What `show_limits`, `set_limits` and `set_schedule` answer: the limits and the schedule in force. */
export interface LimitsView {
  global: RateLimitsView;
  groups: (RateLimitsView & { groupId: string })[];
  /** Whether peers on the local network (loopback, RFC 1918, link-local) go unthrottled. */
  exemptLocal: boolean;
  schedule: {
    /** The current slot's mode (full when no schedule is set) and its name (`mon 18:15`). */
    mode: 'full' | 'limited' | 'upload-only' | 'paused';
    slot: string;
    /** The rates of the limited slots. */
    limited: RateLimitsView;
    /** The slots that are not full, as ranges of equal mode. */
    ranges: { from: string; to: string; mode: 'limited' | 'upload-only' | 'paused' | 'full' }[];
  };
}

/** Who a target of a message is: a user, a group's channel or a group's topic. */
export type MessageTarget = { to: string } | { groupId: string; topic?: string };

/**
 * Every command of the control API: its arguments (the named words of its
 * syntax, as the command table in peer/control/commands.ts parses them, plus
 * its flags and options) and what it answers. The daemon's CommandContext,
 * the control client's call and the CLI's formatters are all typed by it; a
 * web UI talks the same. Results are plain JSON data.
 */
export interface ControlCommands {
  create_user: { args: { user_id: string; password: string }; result: Api.UserCreated };
  login: {
    args: { user_id: string; password: string };
    result: Pick<Api.LoginResponse, 'userId' | 'expiresAt'>;
  };
  logout: { args: Record<string, never>; result: { userId: string } };
  create_group: { args: { group_id: string }; result: Api.GroupSummary };
  join_group: { args: { group_id: string }; result: Api.JoinResponse };
  leave_group: { args: { group_id: string }; result: Api.LeaveResponse };
  list_groups: { args: Record<string, never>; result: Api.GroupList };
  list_requests: { args: { group_id: string }; result: Api.JoinRequestList };
  accept_request: { args: { group_id: string; user_id: string }; result: Api.JoinDecision };
  decline_request: { args: { group_id: string; user_id: string }; result: Api.JoinDecision };
  remove_member: { args: { group_id: string; user_id: string }; result: Api.RemoveMemberResponse };
  list_members: { args: { group_id: string }; result: Api.MemberList };
  list_files: { args: { group_id: string; file_name?: string }; result: Api.FileList | FileTree };
  upload_file: { args: { path: string; group_id: string }; result: UploadResult };
  download_file: {
    args: {
      group_id: string;
      file_name: string;
      dest: string;
      wait?: boolean;
      version?: number;
      only?: string[];
      exclude?: string[];
      limit?: string;
      no_wait?: boolean;
      sequential?: boolean;
    };
    result: DownloadView;
  };
  select_files: { args: { group_id: string; file_name: string; globs: string[] }; result: DownloadView };
  update_file: {
    args: { group_id: string; file_name: string; path: string; if_version?: number };
    result: UpdateResult;
  };
  delete_file: { args: { group_id: string; file_name: string }; result: Api.DeleteResponse };
  lock_file: { args: { group_id: string; file_name: string; ttl?: string }; result: Api.FileLock };
  unlock_file: { args: { group_id: string; file_name: string }; result: Api.UnlockResponse };
  list_versions: { args: { group_id: string; file_name: string }; result: Api.VersionList };
  set_versions: { args: { group_id: string; keep: number }; result: Api.KeepVersionsResponse };
  stop_share: { args: { file_name: string; group_id?: string }; result: StopShareResult };
  show_downloads: { args: { download?: string }; result: ShowDownloadsResult };
  send_msg: { args: { user_id: string; message: string }; result: SendAnswer };
  send_group_msg: { args: { group_id: string; message: string }; result: SendAnswer };
  show_messages: {
    args: { user_id?: string; group?: string; unread?: boolean; peek?: boolean; limit?: number };
    result: ShowMessagesResult;
  };
  show_sent: { args: { user_id?: string; group?: string; limit?: number }; result: ShowSentResult };
  message_status: { args: { message_id: string }; result: Api.MessageStatus };
  mark_read: { args: { message_id: string }; result: MarkReadResult };
  create_topic: { args: { group_id: string; topic: string }; result: Api.TopicSummary };
  list_topics: { args: { group_id: string }; result: Api.TopicList };
  publish: { args: { group_id: string; topic: string; message: string }; result: SendAnswer };
  subscribe: { args: { group_id: string; topic: string }; result: Api.Subscription };
  unsubscribe: { args: { group_id: string; topic: string }; result: Api.Subscription };
  fetch_messages: {
    args: { group_id: string; topic: string; from?: number; limit?: number };
    result: Api.MessagePage;
  };
  status: { args: Record<string, never>; result: StatusView };
  offer_storage: { args: { group_id: string; quota: string }; result: Api.StorageOffer };
  withdraw_storage: { args: { group_id: string; now?: boolean }; result: Api.WithdrawResponse };
  set_replication: { args: { group_id: string; min: string; max?: string }; result: Api.ReplicationPolicy };
  list_storage: { args: { group_id: string }; result: Api.StorageList };
  set_limits: { args: { group?: string; upload?: string; download?: string }; result: LimitsView };
  set_schedule: {
    args: { days?: string; hours?: string; mode?: string; upload?: string; download?: string };
    result: LimitsView;
  };
  show_limits: { args: Record<string, never>; result: LimitsView };
  quit: { args: Record<string, never>; result: { stopping: true } };
  pause_download: { args: { download: string }; result: DownloadView };
  resume_download: { args: { download: string }; result: DownloadView };
  cancel_download: { args: { download: string }; result: DownloadView };
}

export type CommandName = keyof ControlCommands;

/** What command K answers. */
export type ResultOf<K extends CommandName> = ControlCommands[K]['result'];

/** What a command named by a string answers: its result when it is one of ours, else unknown. */
export type AnswerOf<N extends string> = N extends CommandName ? ResultOf<N> : unknown;
