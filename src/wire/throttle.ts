/**
 * One connection's share of the bandwidth limits (bandwidth.ts): the buckets
 * its bytes are charged to in each direction (download ⊆ group ⊆ global ⊆
 * schedule slot), read off the socket's own counters, and how long the
 * direction it gates (the seeder's upload, the downloader's download) must
 * wait. FramedConnection asks it after each read, before each block and,
 * sending, before each slice of a block (paced-writer.ts); the other
 * direction's bytes (requests, keepalives) are charged, never held.
 *
 * Fair sharing: every connection held by a bucket re-checks on its own timer
 * and, once the bucket is out of debt, moves one read or one slice before it
 * is charged again, so connections over one bucket take turns.
 */
import type { Duplex } from 'node:stream';
import type { TokenBucket } from '../core/token-bucket.js';
import type { Clock, ClockTimer } from './clock.js';

/** Bytes a transport has put on and taken off the wire so far. */
export interface WireCounters {
  read(): number;
  written(): number;
}

/** A stream handle as Node keeps it under a net.Socket (and under a TLS socket, as `_parent`). */
interface StreamHandle {
  bytesRead?: number;
  bytesWritten?: number;
  _parent?: StreamHandle;
}

/**
 * The wire's counters under a stream: for a TLS socket, those of the TCP
 * handle beneath it (ciphertext: TLS records with their headers and tags,
 * what the user's router sees); for a plain socket its own; for anything
 * else (a relay circuit's inner stream, an in-memory pair) the bytes the
 * stream itself moved. Node keeps the TCP handle of a TLS socket at
 * `_handle._parent` (the TLSWrap's underlying stream; the same for client and
 * server sockets, Node 14 to 22); read through this one function so a change
 * there is found in one place (test/unit/wire-throttle.test.ts checks it).
 */
export function wireCounters(stream: Duplex): WireCounters {
  const handle = (stream as unknown as { _handle?: StreamHandle | null })._handle ?? undefined;
  const raw = handle?._parent ?? handle;
  if (raw !== undefined && typeof raw.bytesRead === 'number' && typeof raw.bytesWritten === 'number') {
    // The handle outlives the socket's close (the counters stay readable); keep it, not the socket.
    return { read: () => raw.bytesRead ?? 0, written: () => raw.bytesWritten ?? 0 };
  }
  const s = stream as unknown as { bytesRead?: number; bytesWritten?: number };
  return { read: () => s.bytesRead ?? 0, written: () => s.bytesWritten ?? 0 };
}

/** Which direction a connection's limits hold back: a seeder's sends, a downloader's reads. */
export type GatedDirection = 'up' | 'down';

/** Longest single wait before re-checking: a raised or lifted limit is seen within it. */
const RECHECK_MS = 250;
/**
 * A limited upload leaves in slices of this much of its rate (paced-writer.ts): 52 KiB at
 * 1 MiB/s, a small part of any window; at 128 MiB/s more than a block, so blocks go whole.
 */
const SLICE_SECONDS = 0.05;
/** ...but no smaller than a TLS record's worth: each slice costs a write and a timer. */
const MIN_SLICE_BYTES = 16 * 1024;

export class LinkThrottle {
  #counters: WireCounters | null = null;
  #lastRead = 0;
  #lastWritten = 0;
  /** The counters were not followed (no bucket limited): re-baseline before charging. */
  #stale = true;

  constructor(
    readonly clock: Clock,
    /** Buckets charged with the bytes written, innermost first. */
    readonly up: readonly TokenBucket[],
    /** Buckets charged with the bytes read. */
    readonly down: readonly TokenBucket[],
    readonly gates: GatedDirection,
  ) {}

  /** Binds the throttle to the stream whose bytes it counts. */
  attach(stream: Duplex): this {
    this.#counters = wireCounters(stream);
    this.#stale = true;
    return this;
  }

  /**
   * Charges what moved since the last call and says how long the gated
   * direction waits (0: go on), at most RECHECK_MS so a change of limit is
   * seen soon. Unlimited, it reads no counter and no clock.
   */
  settle(): number {
    const counters = this.#counters;
    if (counters === null || !(anyLimited(this.up) || anyLimited(this.down))) {
      this.#stale = true;
      return 0;
    }
    const read = counters.read();
    const written = counters.written();
    const now = this.clock.now();
    if (this.#stale) {
      // Bytes moved while nothing was limited are nobody's debt.
      this.#stale = false;
    } else {
      charge(this.down, read - this.#lastRead, now);
      charge(this.up, written - this.#lastWritten, now);
    }
    this.#lastRead = read;
    this.#lastWritten = written;
    let wait = 0;
    for (const b of this.gates === 'up' ? this.up : this.down) wait = Math.max(wait, b.waitMs(now));
    return Math.min(wait, RECHECK_MS);
  }

  /** Whether a limit holds this connection's sends (it gates uploads and a bucket is limited). */
  limitsUpload(): boolean {
    return this.gates === 'up' && anyLimited(this.up);
  }

  /** An upload bucket lets nothing through (a paused schedule slot). */
  uploadPaused(): boolean {
    return lowestRate(this.up) === 0;
  }

  /** The most bytes a paced send puts on the wire at once (Infinity: unlimited). */
  sliceBytes(): number {
    const rate = lowestRate(this.up);
    return rate === Number.POSITIVE_INFINITY
      ? rate
      : Math.max(MIN_SLICE_BYTES, Math.floor(rate * SLICE_SECONDS));
  }
}

/** The lowest rate of these buckets (Infinity: none limited). */
function lowestRate(buckets: readonly TokenBucket[]): number {
  let rate = Number.POSITIVE_INFINITY;
  for (const b of buckets) if (b.limited) rate = Math.min(rate, b.rateBytesPerSec);
  return rate;
}

function anyLimited(buckets: readonly TokenBucket[]): boolean {
  for (const b of buckets) if (b.limited) return true;
  return false;
}

function charge(buckets: readonly TokenBucket[], bytes: number, nowMs: number): void {
  if (bytes <= 0) return;
  for (const b of buckets) b.take(bytes, nowMs);
}

/**
 * A connection's waits on its throttle (FramedConnection's half of it): reads held after one
 * that ran into debt, then released, and sends paced, with every sender of the connection
 * sharing the one wait.
 */
export class ThrottleWaits {
  #readHold: ClockTimer | null = null;
  #pace: Promise<void> | null = null;
  #paceTimer: ClockTimer | null = null;
  #paceDone: (() => void) | null = null;
  #stopped = false;

  constructor(
    readonly throttle: LinkThrottle,
    /** Reading may go on (the hold ended): the connection resumes its stream if nothing else holds it. */
    private readonly onReadsReleased: () => void,
  ) {}

  /** Reads are held: the connection keeps its stream paused. */
  get holdingReads(): boolean {
    return this.#readHold !== null;
  }

  /** After bytes were read: true when the limits say stop reading for now (released later). */
  afterRead(): boolean {
    if (this.throttle.gates !== 'down' || this.#stopped) return false;
    if (this.#readHold !== null) return true;
    const ms = this.throttle.settle();
    if (ms <= 0) return false;
    this.#holdReads(ms);
    return true;
  }

  #holdReads(ms: number): void {
    this.#readHold = this.throttle.clock.setTimeout(() => {
      this.#readHold = null;
      if (this.#stopped) return;
      const next = this.throttle.settle();
      if (next > 0) this.#holdReads(next);
      else this.onReadsReleased();
    }, ms);
  }

  /** null when sending may go on now; otherwise resolves once it may (or stop() was called). */
  paced(): Promise<void> | null {
    const t = this.throttle;
    if (t.gates !== 'up' || this.#stopped) return null;
    if (this.#pace !== null) return this.#pace;
    const first = t.settle();
    if (first <= 0) return null;
    this.#pace = new Promise<void>((resolve) => {
      const done = () => {
        this.#paceTimer?.cancel();
        this.#pace = null;
        this.#paceTimer = null;
        this.#paceDone = null;
        resolve();
      };
      const wait = (ms: number) => {
        this.#paceTimer = t.clock.setTimeout(() => {
          const next = this.#stopped ? 0 : t.settle();
          if (next > 0) wait(next);
          else done();
        }, ms);
      };
      this.#paceDone = done;
      wait(first);
    });
    return this.#pace;
  }

  /** The connection is closing: release every waiter, hold nothing more. */
  stop(): void {
    this.#stopped = true;
    this.#paceDone?.();
    this.#readHold?.cancel();
    this.#readHold = null;
  }
}
