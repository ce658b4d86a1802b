import { join } from 'node:path';
import { DEFAULT_TICKET_TTL_SECONDS } from '../protocol/tickets.js';

/**
 * Every tunable of the tracker, in one frozen place, units in the names.
 * startTracker() merges its options over these; `coterie tracker` maps flags
 * and COTERIE_* environment variables onto the options.
 */
export const TRACKER_DEFAULTS = Object.freeze({
  host: '127.0.0.1',
  port: 7070,
  /** WebSocket ping period: DESIGN.md says every 10 s. */
  heartbeatIntervalMs: 10_000,
  /** A session is dead after this long without a pong: DESIGN.md says 5 s. */
  heartbeatTimeoutMs: 5_000,
  /** Login tokens live this long unless the client asks for less. */
  sessionTtlSeconds: 30 * 24 * 3600,
  /**
   * Tickets: default lifetime. Short, so that a ticket binds its holder
   * briefly; downloaders renew theirs at about 2/3 of it. A client may ask for
   * 1 … 60 minutes (MAX_TICKET_TTL_SECONDS).
   */
  ticketTtlSeconds: DEFAULT_TICKET_TTL_SECONDS,
  /**
   * scrypt cost (N = 2^15, r = 8: 32 MiB and ~50–100 ms per hash on this class
   * of machine): memory-hard enough to make offline guessing expensive, cheap
   * enough for logins.
   */
  scryptLogN: 15,
  scryptBlockSize: 8,
  scryptParallelism: 1,
  /** Failed logins allowed per window, per user id and per client address. */
  loginFailuresPerUser: 5,
  loginFailuresPerAddress: 20,
  loginFailureWindowMs: 60_000,
  /**
   * Account creations per client address per window, counted by each tracker: each costs a
   * scrypt (32 MiB), and a person makes one; 20 in 10 minutes lets a classroom behind one NAT
   * sign up while one address burns at most ~2 CPU-s of hashing per window.
   */
  accountCreationsPerAddress: 20,
  accountCreationWindowMs: 10 * 60_000,
  /**
   * Request bodies: small everywhere except a share, which carries a single file's manifest whole
   * (≤ 65,536 × 67 bytes of piece hashes); a folder's travels in pages of ≤ 1 MiB (Fastify's default).
   */
  bodyLimitBytes: 64 * 1024,
  shareBodyLimitBytes: 5 * 1024 * 1024,
  /**
   * Authenticated tokens are cached this long so hot routes skip a store read;
   * a logout on this tracker evicts at once, on another tracker of the cluster
   * within this delay.
   */
  tokenCacheMs: 5_000,
  tokenCacheEntries: 10_000,
  /**
   * Hot lookups (membership, live seeders) are cached this long at most;
   * events invalidate them sooner, the TTL only bounds staleness if an event is lost.
   */
  readCacheMs: 1_000,
  readCacheEntries: 10_000,
  /** Peer quality: scores drift back to neutral with this half-life. */
  scoreHalfLifeMs: 6 * 3600 * 1000,
  /** A peer whose decayed count of corrupt pieces reaches this is flagged and listed last. */
  corruptFlagThreshold: 3,
  /** Largest message body, in UTF-8 bytes (DESIGN: 64 KiB). */
  messageMaxBytes: 64 * 1024,
  /**
   * Sends per user: sustained rate and burst. Generous for people and their
   * scripts; low enough that one account cannot monopolise the write queue.
   */
  messageRatePerSecond: 1_000,
  messageBurst: 2_000,
  /** How often topic messages past their retention (count or age) are deleted. */
  retentionSweepMs: 60_000,
  /** Cluster membership: each tracker rewrites its heartbeat row this often… */
  clusterHeartbeatMs: 2_000,
  /** …and drops out of the live list after this long without one (3 missed beats). */
  clusterDeadAfterMs: 6_000,
  /**
   * Rebalancing (services/rebalance.ts): a tracker more than 10 % above the
   * cluster's mean session count (or with another 10 % below it), by at least
   * 2 sessions, asks some of its sessions to move to the trackers below it.
   */
  rebalanceTolerance: 0.1,
  rebalanceMinExcess: 2,
  /**
   * The seeders of a tracker that died stay listed this long after it dropped
   * out, so that peers failing over (within seconds) do not flicker out of
   * downloads; peers that do not come back are then removed.
   */
  presenceGraceMs: 15_000,
  /**
   * A storage peer disconnected longer than this stops counting as a replica
   * holder and its files are repaired elsewhere; one back within it causes no
   * repair traffic (issue 16).
   */
  storageGraceMs: 30_000,
  /**
   * A replica fetch its storage peer reported no progress on for this long
   * failed silently: it is placed elsewhere (issue 16; storage peers report
   * progress every few seconds).
   */
  storageFetchStallMs: 600_000,
  /**
   * Files listed in no group are removed, with their manifest pages, this
   * long after (services/file-gc.ts): the longest ticket lifetime, an hour,
   * so a download holding a ticket still reads the pages.
   */
  gcGraceMs: 3_600_000,
  /** Manifest pages no file refers to are removed this long after their last upload (an upload may be under way). */
  gcOrphanGraceMs: 86_400_000,
  /** How often the garbage collection runs (on the one tracker of a cluster holding its lease). */
  gcIntervalMs: 60_000,
  logLevel: 'info' as 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent',
});

export type TrackerDefaults = typeof TRACKER_DEFAULTS;

/** The file GC's settings (services/file-gc.ts), as startTracker takes them. */
export type GcSettings = Record<'gcGraceMs' | 'gcOrphanGraceMs' | 'gcIntervalMs', number>;

/** The key file's name in a data directory: it wraps the signing keys the store holds. */
export const KEY_FILE_NAME = 'tracker.key';

/** Where a tracker keeps its key file unless `--key-file` says otherwise. */
export function defaultKeyFile(dataDir: string): string {
  return join(dataDir, KEY_FILE_NAME);
}
