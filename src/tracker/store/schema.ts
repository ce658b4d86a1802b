import type { ColumnType } from 'kysely';

/**
 * Column types. Integers that may exceed 2^31 (sizes, timestamps) are BIGINT:
 * better-sqlite3 reads them as numbers, pg as strings, so every read goes
 * through toNumber(). Timestamps are milliseconds since the epoch.
 */
type BigIntColumn = ColumnType<number | string, number, number>;

export interface UsersTable {
  user_id: string;
  password_hash: string;
  created_at: BigIntColumn;
}

export interface SessionsTable {
  /** SHA-256 of the bearer token, hex: the token itself is never stored. */
  token_hash: string;
  user_id: string;
  created_at: BigIntColumn;
  expires_at: BigIntColumn;
}

export interface GroupsTable {
  group_id: string;
  owner_id: string;
  created_at: BigIntColumn;
  /** How many versions of each file name are kept (null: DEFAULT_KEEP_VERSIONS). */
  keep_versions: number | null;
}

export interface MembershipsTable {
  group_id: string;
  user_id: string;
  joined_at: BigIntColumn;
}

export interface JoinRequestsTable {
  group_id: string;
  user_id: string;
  requested_at: BigIntColumn;
}

export interface FilesTable {
  file_id: string;
  size: BigIntColumn;
  piece_size: number;
  piece_count: number;
  /** The validated manifest as JSON. */
  manifest: string;
  created_at: BigIntColumn;
  /** When the GC first found it listed in no group; null while listed (migration 0020, services/file-gc.ts). */
  unlisted_at: BigIntColumn | null;
}

/** File F's manifest refers to page `hash` (migration 0020): a page goes only when no file refers to it. */
export interface ManifestPageRefsTable {
  file_id: string;
  hash: string;
}

/** A page of a folder's manifest, by its hash (see migration 0018). */
export interface ManifestPagesTable {
  hash: string;
  /** The validated page as the tracker's own JSON. */
  body: string;
  created_at: BigIntColumn;
}

/** One retained version of a name: the file id is listed in the group (see migration 0014). */
export interface GroupFilesTable {
  group_id: string;
  file_id: string;
  name: string;
  version: BigIntColumn;
  created_by: string;
  created_at: BigIntColumn;
}

/** A listed name: its current version, its first author, and its lock (a lease; see services/file-locks.ts). */
export interface FileNamesTable {
  group_id: string;
  name: string;
  current_version: BigIntColumn;
  created_by: string;
  created_at: BigIntColumn;
  lock_holder: string | null;
  /** The holder's peer: the lease ends when that peer has no session in the cluster. */
  lock_peer: string | null;
  lock_expires_at: BigIntColumn | null;
}

/** A deleted name's file ids, kept an hour for sessions that were down when it happened. */
export interface FileDeletionsTable {
  group_id: string;
  file_id: string;
  name: string;
  deleted_at: BigIntColumn;
}

/** Durable: user U's peer P shares file F in group G. P is a live seeder while present and announcing F. */
export interface SharesTable {
  group_id: string;
  file_id: string;
  peer_id: string;
  user_id: string;
  created_at: BigIntColumn;
}

/** Live: one row per connected peer, written by the tracker holding its session. */
export interface PresenceTable {
  peer_id: string;
  user_id: string;
  session_id: string;
  tracker_id: string;
  /** JSON array of "host:port". */
  addresses: string;
  connected_at: BigIntColumn;
}

/** Live: the files a present peer announces. Rows belong to the session that wrote them. */
export interface PresenceFilesTable {
  peer_id: string;
  file_id: string;
  session_id: string;
  tracker_id: string;
}

export interface PeerScoresTable {
  peer_id: string;
  /** In [0, 1], 0.5 neutral; decays toward 0.5. */
  score: number;
  /** Decayed count of corrupt pieces reported. */
  corrupt: number;
  reports: BigIntColumn;
  updated_at: BigIntColumn;
}

export interface ClusterKeysTable {
  kid: string;
  /**
   * The Ed25519 private key as a compact JWE (`dir` + A256GCM) under the
   * tracker's key file (services/key-wrap.ts); a plain JWK in stores from
   * before key files, wrapped on the next start.
   */
  private_jwk: string;
  public_jwk: string;
  created_at: BigIntColumn;
}

/** A direct conversation, a group's channel or a topic (see migration 0002). */
export interface StreamsTable {
  stream_id: string;
  kind: 'direct' | 'group' | 'topic';
  group_id: string | null;
  topic: string | null;
  last_seq: BigIntColumn;
  /** Topics: keep at most this many messages (null: no limit). */
  retention_count: BigIntColumn | null;
  /** Topics: keep messages at most this long (null: no limit). */
  retention_ms: BigIntColumn | null;
  created_by: string;
  created_at: BigIntColumn;
}

export interface MessagesTable {
  stream_id: string;
  seq: BigIntColumn;
  /** Derived from (sender, client_id): a retried send finds its first copy. */
  message_id: string;
  sender: string;
  client_id: string;
  body: string;
  created_at: BigIntColumn;
}

/** A reader's position in a stream; for topics, the row is the subscription. */
export interface CursorsTable {
  stream_id: string;
  user_id: string;
  delivered_seq: BigIntColumn;
  read_seq: BigIntColumn;
}

/** Cluster membership: one row per tracker, rewritten at every heartbeat. */
export interface TrackersTable {
  tracker_id: string;
  /** The public URL peers use. */
  url: string;
  started_at: BigIntColumn;
  heartbeat_at: BigIntColumn;
  sessions: number;
  requests_per_second: number;
  /** Where its built-in relay listens (host:port), null without one (migration 0016). */
  relay: string | null;
}

/** A retried call (same key, same caller) gets this stored answer instead of running again. */
export interface IdempotencyKeysTable {
  /** The caller's user id ('' before login). */
  scope: string;
  idem_key: string;
  route: string;
  status: number;
  /** The JSON body sent the first time. */
  body: string;
  created_at: BigIntColumn;
}

export interface Database {
  users: UsersTable;
  sessions: SessionsTable;
  groups: GroupsTable;
  memberships: MembershipsTable;
  join_requests: JoinRequestsTable;
  files: FilesTable;
  manifest_pages: ManifestPagesTable;
  manifest_page_refs: ManifestPageRefsTable;
  group_files: GroupFilesTable;
  file_names: FileNamesTable;
  file_deletions: FileDeletionsTable;
  shares: SharesTable;
  presence: PresenceTable;
  presence_files: PresenceFilesTable;
  peer_scores: PeerScoresTable;
  cluster_keys: ClusterKeysTable;
  streams: StreamsTable;
  messages: MessagesTable;
  cursors: CursorsTable;
  trackers: TrackersTable;
  idempotency_keys: IdempotencyKeysTable;
  login_failures: LoginFailuresTable;
  ticket_revocations: TicketRevocationsTable;
  storage_offers: StorageOffersTable;
  replication_policies: ReplicationPoliciesTable;
  replicas: ReplicasTable;
  storage_leases: StorageLeasesTable;
  replica_backoffs: ReplicaBackoffsTable;
}

/**
 * A member removed from a group, or who left it: their tickets for the group
 * issued before `before_s` (seconds) are void (see services/revocations.ts).
 */
export interface TicketRevocationsTable {
  group_id: string;
  user_id: string;
  before_s: BigIntColumn;
}

/** A member's peer offers space to a group (issue 16). */
export interface StorageOffersTable {
  group_id: string;
  peer_id: string;
  user_id: string;
  quota_bytes: BigIntColumn;
  /** A label (room, house, rack); '' for none. */
  zone: string;
  offered_at: BigIntColumn;
  /** 1 while its replicas are moved elsewhere before the offer ends. */
  withdrawing: number;
  /** When the peer was last known connected: its grace runs from here once it is not. */
  last_seen: BigIntColumn;
}

/** A group's replication policy; no row is min 0 (no placement). */
export interface ReplicationPoliciesTable {
  group_id: string;
  min_replicas: number;
  max_replicas: number;
  updated_at: BigIntColumn;
}

/** A copy of a group's file on a storage peer: assigned (being fetched), held (verified) or corrupt. */
export interface ReplicasTable {
  group_id: string;
  file_id: string;
  peer_id: string;
  state: 'assigned' | 'held' | 'corrupt';
  updated_at: BigIntColumn;
  /** An assignment: when its storage peer last reported the fetch making progress (migration 0019). */
  progress_at: BigIntColumn | null;
}

/** A replica a storage peer failed to fetch: not assigned to it again before retry_at (migration 0017). */
export interface ReplicaBackoffsTable {
  group_id: string;
  file_id: string;
  peer_id: string;
  /** Failures in a row; the wait doubles with each (core/placement.ts replicaRetryDelayMs). */
  failures: number;
  retry_at: BigIntColumn;
}

/** Who plans placement now: one row per lease, taken over once expired. */
export interface StorageLeasesTable {
  name: string;
  holder: string;
  expires_at: BigIntColumn;
}

/** A failed-login window (see services/rate-limit.ts). */
export interface LoginFailuresTable {
  /** What is counted: 'user' or 'address'. */
  scope: string;
  failure_key: string;
  window_start: BigIntColumn;
  failures: number;
}

/** BIGINT columns come back as number (SQLite) or string (pg). */
export function toNumber(value: number | string | bigint): number {
  return typeof value === 'number' ? value : Number(value);
}
