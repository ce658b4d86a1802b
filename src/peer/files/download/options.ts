import type { BackoffOptions } from '../../../core/backoff.js';
import type { SchedulerOptions } from '../../../core/scheduler.js';
import type { Manifest } from '../../../protocol/manifest.js';
import type {
  Clock,
  Dial,
  PartialPieceSource,
  PathKeepaliveOptions,
  PeerIdentity,
} from '../../../wire/index.js';
import type {
  DownloadEvent,
  DownloadProgress,
  DownloadResult,
  DownloadSnapshot,
  SeederInfo,
  SeederWhere,
} from './events.js';
import type { PieceStore } from './piece-store.js';
import type { DirIdentity } from './safe-open.js';

export type { Dial } from '../../../wire/index.js';

export interface RetryPolicy {
  /** Connection attempts per seeder in a row without progress before giving up on it. */
  maxAttempts: number;
  backoff: Partial<BackoffOptions>;
}

export interface DownloadOptions {
  manifest: Manifest;
  fileId: string;
  dest: string;
  seeders: SeederInfo[];
  /** The download ticket, or a function that fetches a fresh one (called per connection). */
  ticket?: string;
  getTicket?: () => Promise<string>;
  /** Our key pair and certificate: our peer id is what the ticket names and seeders check. */
  identity: PeerIdentity;
  /** No TLS (bytes in the clear, seeder identity unchecked): only for measuring the cost of TLS. */
  plaintext?: boolean;
  /** How to reach a seeder; default: TLS 1.3 pinned to the seeder's peer id (`createTlsDial`). */
  dial?: Dial;
  overwrite?: boolean;
  signal?: AbortSignal;
  scheduler?: Partial<SchedulerOptions>;
  retry?: Partial<RetryPolicy>;
  /** Give up on a connection attempt after this long. */
  connectTimeoutMs?: number;
  /** Progress events at most this often. */
  progressIntervalMs?: number;
  /** Pieces waiting for their hash or the disk, in bytes, before requests pause (memory bound). */
  maxPendingWriteBytes?: number;
  /** Least time between writes of the resume file (a killed download refetches at most this much). */
  resumeIntervalMs?: number;
  /** Give up (NO_SEEDERS) when no connected peer has the missing pieces and nothing verified for this long. */
  noProgressTimeoutMs?: number;
  /** Verified pieces kept in memory after their write, in bytes, to serve other downloaders from (recent-pieces.ts; 0: none). */
  recentPiecesBytes?: number;
  /** Threads hashing pieces besides the main one (default 1 on a multi-core machine, else 0). */
  hashWorkers?: number;
  /** Write verified pieces past the page cache (O_DIRECT) where the file system allows it. */
  directIo?: boolean;
  /** Reserve the whole part file's blocks at the start (DISK_FULL at once when it cannot fit). */
  preallocate?: boolean;
  /** The destination directory's identity when the download started: a resume elsewhere is PATH_INVALID (partial-file.ts). */
  destDir?: DirIdentity;
  /** Where verified pieces go instead of a partial file at `dest` (a folder's tree: partial-tree.ts). */
  openStore?: (o: { hashPiece: (data: Buffer) => Promise<string> }) => Promise<PieceStore>;
  /** Pieces to fetch (a folder's selected files; want() adds more); every piece by default. */
  wanted?: (piece: number) => boolean;
  /** Bytes of the wanted pieces, progress' total; the manifest's size by default. */
  wantedBytes?: () => number;
  /** Called with every event, before emitter listeners. */
  onEvent?: (event: DownloadEvent) => void;
  /** Every timing of the download and its connections (tests pass a fake or a fast one); the real clock by default. */
  clock?: Clock;
  /** How often the scheduler's clock is looked at: stall detection, backoff expiry, progress. */
  tickMs?: number;
  /** A relayed seeder: how the download tries to reach it directly meanwhile (see seeder-links.ts). */
  upgrade?: Partial<UpgradePolicy>;
  /** A relayed or punched link's pings (wire/path-keepalive.ts); false: none. Its defaults otherwise. */
  pathKeepalive?: Partial<PathKeepaliveOptions> | false;
}

export interface UpgradePolicy {
  /** Attempts per relayed connection, those a change of addresses brings forward included. */
  attempts: number;
  /** From the relayed connection being ready to the first attempt. */
  firstMs: number;
  /** The longest wait between a failed attempt and the next (the waits double up to it, see upgrade-schedule.ts). */
  intervalMs: number;
  /** Fraction of each wait taken off at random (0 = none): downloaders of one seeder do not punch in step. */
  jitter: number;
  /** After the switch, the relayed connection is closed once it owes nothing, or has been quiet this long. */
  drainIdleMs: number;
}

export const DOWNLOAD_DEFAULTS = Object.freeze({
  retry: { maxAttempts: 5, backoff: { baseMs: 250, maxMs: 5_000, factor: 2, jitter: 0.3 } },
  connectTimeoutMs: 10_000,
  progressIntervalMs: 250,
  // Verified pieces queued for the disk; with the pools and the blocks in flight this keeps
  // the downloader's RSS near 130 MiB whatever the file size.
  maxPendingWriteBytes: 8 * 1024 * 1024,
  // The pieces verified last, served to the swarm from memory: a piece is asked for most just
  // after it was verified (it is rarest then), and the disk copy went past the page cache.
  recentPiecesBytes: 16 * 1024 * 1024,
  // One thread hashing beside the main one (which decrypts and writes): the 2-core case.
  hashWorkers: 1,
  // A download writes a file the machine has never seen: past the page cache it costs a
  // fraction of the CPU (see io-memory.ts), and it does not push everything else out of it.
  directIo: true,
  // Reserve the file's blocks up front: no DISK_FULL at 97 %, fewer extents, faster direct writes.
  preallocate: true,
  // Pieces no connected peer has, and nothing verified for this long: NO_SEEDERS.
  noProgressTimeoutMs: 60_000,
  // The scheduler's clock granularity: stall detection and backoff expiry are checked this often.
  tickMs: 50,
  // The rate is an exponential average of samples at least this long: shorter ones are mostly noise
  // (a few blocks), longer ones make the ETA slow to follow a change.
  rateSampleMs: 250,
  // A punch that failed may work later (a NAT's mapping settled, a reflection answered): tries
  // 1.5 s after the relayed link is up, then 3, 6 and every 10 s (each less up to 30 %), each a
  // punch message through the tracker and up to 3 s of probes; about 100 s of tries in all.
  upgrade: { attempts: 10, firstMs: 1_500, intervalMs: 10_000, jitter: 0.3, drainIdleMs: 5_000 },
});

export interface DownloadHandle {
  /** Resolves with the result, or rejects with a CoterieError (NO_SEEDERS, DOWNLOAD_FAILED, TICKET_*, …). */
  readonly done: Promise<DownloadResult>;
  on(event: 'event', listener: (e: DownloadEvent) => void): this;
  off(event: 'event', listener: (e: DownloadEvent) => void): this;
  /** Adds a seeder while the download runs (the daemon forwards the tracker's seeder events). */
  addSeeder(seeder: SeederInfo): void;
  /** Something changed on our side that may let a punch through: relayed seeders are tried directly now. */
  retryDirect(): void;
  /**
   * The tracker says seeder `peerId` moved (`peer_moved`): a link to it uses `where` now (see
   * SeederLinks.moved). False when this download has no link to it.
   */
  seederMoved(peerId: string, where: SeederWhere): boolean;
  /** Totals and per-peer figures now; once ended, as they were at the end (the peers' pieces kept). */
  progress(): DownloadProgress;
  /** progress() with a copy of the verified pieces' bitfield: what a transfer view draws. */
  snapshot(): DownloadSnapshot;
  /** Stops the download: `done` rejects with DOWNLOAD_FAILED; the partial file stays for a later resume. */
  abort(reason?: string): void;
  /**
   * The verified part of the file as a PieceSource, for this peer's piece
   * server: downloaders serve what they have (a have per piece as it lands
   * on disk), so they help each other; once the download completed, handed over to the share
   * its file becomes.
   */
  readonly pieceSource: PartialPieceSource;
  /** Pieces skipped by `wanted` are fetched too; false once the download has ended. */
  want?(pieces: Iterable<number>): boolean;
}
