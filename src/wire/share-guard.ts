import { EventEmitter } from 'node:events';
import { type Stats, stat } from 'node:fs';
import { promisify } from 'node:util';
import { hashPiece } from '../core/piece-hash.js';
import { CoterieError } from '../protocol/errors.js';
import type { Manifest } from '../protocol/manifest.js';
import { type Clock, realClock } from './clock.js';

const statAsync = promisify(stat);

/**
 * Watches a shared file for changes since it was hashed, so that its seeder
 * stops serving bytes that no longer match the manifest.
 *
 * Two signals: on serve, the file's size, mtime and inode against what they
 * were when sharing began (a stat at most every statCacheMs); and after a
 * downloader reports a piece corrupt, a self-check that re-hashes that piece
 * from the file. A report is never trusted blindly: a file that still
 * matches goes on being served. Self-checks are bounded, at most one at a
 * time per file and a small token bucket, so that a hostile downloader
 * cannot make the seeder hash all day.
 */

/** What a file looked like when it was hashed. */
export interface FileStamp {
  size: number;
  mtimeMs: number;
  ino: number;
}

export interface ShareGuardOptions {
  /** A stat of the file is trusted this long. */
  statCacheMs: number;
  /** Self-checks a file allows at once after a quiet time… */
  selfCheckBurst: number;
  /** …and one more each this many milliseconds. */
  selfCheckRefillMs: number;
}

export const SHARE_GUARD_DEFAULTS: Readonly<ShareGuardOptions> = Object.freeze({
  // A stat per block would be thousands of syscalls a second at full speed. Once a second bounds
  // what a changed file serves before we notice to a second of requests, and the downloader's
  // hash check refuses those bytes anyway.
  statCacheMs: 1_000,
  // A downloader that lies about every piece makes us hash three pieces, then one per 20 s
  // (at most 16 MiB each): noise next to serving it.
  selfCheckBurst: 3,
  selfCheckRefillMs: 20_000,
});

/** The outcome of a corrupt report: the piece still matches, the file changed, or no check (rate limit). */
export type ReportVerdict = 'intact' | 'changed' | 'skipped';

export function stampOf(st: Pick<Stats, 'size' | 'mtimeMs' | 'ino'>): FileStamp {
  return { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino };
}

/** Why `now` is not the file `was`, or undefined when it looks the same. */
export function stampDifference(was: FileStamp, now: FileStamp): string | undefined {
  if (now.ino !== was.ino) return 'it was replaced by another file';
  if (now.size !== was.size) return `its size went from ${was.size} to ${now.size} bytes`;
  if (now.mtimeMs !== was.mtimeMs) return `it was modified at ${new Date(now.mtimeMs).toISOString()}`;
  return undefined;
}

export class ShareGuard extends EventEmitter<{
  changed: [reason: string];
  report: [report: { piece: number; verdict: ReportVerdict }];
}> {
  readonly stats = { reports: 0, selfChecks: 0, skipped: 0 };
  readonly #o: ShareGuardOptions;
  #changed: string | undefined;
  #checkedAt = Number.NEGATIVE_INFINITY;
  #statting: Promise<void> | null = null;
  #checking = false;
  #tokens: number;
  #refilledAt: number;

  constructor(
    readonly path: string,
    readonly manifest: Manifest,
    readonly stamp: FileStamp,
    private readonly readPiece: (piece: number) => Promise<Buffer>,
    options: Partial<ShareGuardOptions> = {},
    /** Where the stat cache and the self-check bucket get their time (monotonic ms). */
    private readonly clock: Pick<Clock, 'now'> = realClock,
  ) {
    super();
    this.#o = { ...SHARE_GUARD_DEFAULTS, ...options };
    this.#tokens = this.#o.selfCheckBurst;
    this.#refilledAt = clock.now();
  }

  /** Why the file is no longer served, once it is known to have changed. */
  get changedReason(): string | undefined {
    return this.#changed;
  }

  /** Throws NOT_SHARING once the file changed; stats it at most once per statCacheMs. */
  async assertUnchanged(): Promise<void> {
    if (this.#changed === undefined && this.clock.now() - this.#checkedAt >= this.#o.statCacheMs) {
      this.#statting ??= this.#restat().finally(() => {
        this.#statting = null;
      });
      await this.#statting;
    }
    if (this.#changed !== undefined) {
      throw new CoterieError('NOT_SHARING', `this peer no longer serves that file: ${this.#changed}`);
    }
  }

  /** A downloader says `piece` failed its hash: re-hash it from the file, within the bounds. */
  report(piece: number): void {
    this.stats.reports++;
    if (this.#changed !== undefined) {
      this.emit('report', { piece, verdict: 'changed' });
      return;
    }
    if (this.#checking || !this.#takeToken()) {
      this.stats.skipped++;
      this.emit('report', { piece, verdict: 'skipped' });
      return;
    }
    this.#checking = true;
    void this.#selfCheck(piece).finally(() => {
      this.#checking = false;
    });
  }

  async #selfCheck(piece: number): Promise<void> {
    this.stats.selfChecks++;
    await this.#restat();
    if (this.#changed === undefined) {
      try {
        // On the main thread: a piece is at most 16 MiB, and the token bucket bounds how often.
        if (hashPiece(await this.readPiece(piece)) !== this.manifest.pieces[piece]) {
          this.#markChanged(`piece ${piece} no longer matches the hash taken when it was shared`);
        }
      } catch (err) {
        this.#markChanged(`piece ${piece} cannot be read (${(err as Error).message})`);
      }
    }
    this.emit('report', { piece, verdict: this.#changed === undefined ? 'intact' : 'changed' });
  }

  async #restat(): Promise<void> {
    let now: FileStamp;
    try {
      now = stampOf(await statAsync(this.path));
    } catch (err) {
      this.#markChanged(`it cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      return;
    }
    this.#checkedAt = this.clock.now();
    const why = stampDifference(this.stamp, now);
    if (why !== undefined) this.#markChanged(why);
  }

  #markChanged(reason: string): void {
    if (this.#changed !== undefined) return;
    this.#changed = reason;
    this.emit('changed', reason);
  }

  #takeToken(): boolean {
    const now = this.clock.now();
    const earned = Math.floor((now - this.#refilledAt) / this.#o.selfCheckRefillMs);
    if (earned > 0) {
      this.#tokens = Math.min(this.#o.selfCheckBurst, this.#tokens + earned);
      this.#refilledAt += earned * this.#o.selfCheckRefillMs;
    }
    if (this.#tokens === 0) return false;
    this.#tokens--;
    return true;
  }
}
