import { EventEmitter } from 'node:events';
import { type Backoff, createStepBackoff, TRACKER_RECONNECT_STEPS_MS } from '../../core/index.js';
import { CoterieError } from '../../protocol/errors.js';
import { formatTrackerAddress, parseTrackerAddress } from '../../protocol/tracker-url.js';
import { PEER_DEFAULTS } from '../config.js';

/**
 * The list of tracker URLs a peer may use, with the failover policy: stay on
 * the current tracker while it works; when it is lost, move to the next one
 * of the list; after a whole round of failures, wait with growing, jittered
 * backoff. Every timing is injectable so tests run in milliseconds.
 *
 * The list starts as the URLs the user gave (seeds) and learns the cluster:
 * the live trackers a tracker reports (GET /v1/cluster, the session's
 * `cluster` pushes), least loaded first, then the seeds it did not list.
 */
export interface TrackerPoolOptions {
  /**
   * Backoff steps in ms, indexed by the number of rounds over the list that
   * failed (the last repeats); entry 0 is the first pass, tried at once.
   */
  backoffMs?: readonly number[];
  /** Random spread of each delay, as a fraction (0.2 = ±20 %), so many peers do not reconnect in step. */
  jitter?: number;
  random?: () => number;
  /** Told the fingerprint of each tracker the cluster lists with one (TrackerPins). */
  pins?: { learn(origin: string, fingerprint: string): void };
}

const DEFAULT_JITTER = PEER_DEFAULTS.trackerBackoffJitter;

/** `--tracker URL[,URL…]`: each an origin, with `#sha256=…` kept when given (protocol/tracker-url.ts). */
export function parseTrackerUrls(list: string): string[] {
  const urls = list
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (urls.length === 0)
    throw new CoterieError('USAGE', 'give at least one tracker URL: --tracker https://HOST:PORT');
  return urls.map((u) => formatTrackerAddress(parseTrackerAddress(u)));
}

/** A live tracker as the cluster reports it. */
export interface KnownTracker {
  url: string;
  /** Its certificate's SHA-256 when self-signed: pinned from then on. */
  fingerprint?: string;
  sessions: number;
  requestsPerSecond: number;
}

export interface TrackerPoolEvents {
  /** The list changed (learned the cluster). */
  changed: [urls: readonly string[]];
  /** A tracker was found dead (calls still in flight to it may give up). */
  failed: [url: string];
}

export class TrackerPool extends EventEmitter<TrackerPoolEvents> {
  private list: string[];
  private readonly seeds: readonly string[];
  private index = 0;
  /** Whether any tracker ever answered: before that, calls fail fast instead of waiting out a failover. */
  private everSucceeded = false;
  /** Consecutive failures since the last success. */
  private failures = 0;
  private readonly backoff: Backoff;
  private readonly pins: TrackerPoolOptions['pins'];
  private readonly random: () => number;

  constructor(urls: readonly string[], options: TrackerPoolOptions = {}) {
    super();
    if (urls.length === 0) throw new CoterieError('USAGE', 'no tracker URL given');
    this.pins = options.pins;
    this.random = options.random ?? Math.random;
    this.seeds = [...new Set(urls)];
    this.list = [...this.seeds];
    this.backoff = createStepBackoff({
      stepsMs: options.backoffMs ?? TRACKER_RECONNECT_STEPS_MS,
      jitter: options.jitter ?? DEFAULT_JITTER,
      ...(options.random === undefined ? {} : { random: options.random }),
    });
  }

  /** Every tracker URL known, in the order they are tried. */
  get urls(): readonly string[] {
    return this.list;
  }

  get current(): string {
    return this.list[this.index]!;
  }

  /** Whether some tracker answered since this pool was made. */
  get reachedOnce(): boolean {
    return this.everSucceeded;
  }

  /** The tracker answered: forget past failures. */
  succeeded(url: string = this.current): void {
    this.everSucceeded = true;
    if (url === this.current) this.failures = 0;
  }

  /**
   * Learns the cluster's live trackers: the list becomes them, least loaded
   * first, then the seeds they did not include (tried last). The current
   * tracker stays current; `choose` picks one afresh (before connecting) by
   * the power of two choices: the less loaded of two live trackers drawn at
   * random. Peers starting together all read the same, lagging load figures;
   * had each taken the least loaded, they would all land on one tracker.
   */
  learn(live: readonly KnownTracker[], options: { choose?: boolean } = {}): void {
    const usable = live.filter((t) => isHttpUrl(t.url));
    // Pinned before the list changes: a failover to a listed tracker checks its certificate.
    for (const t of usable)
      if (t.fingerprint !== undefined) this.pins?.learn(new URL(t.url).origin, t.fingerprint);
    const ordered = [...usable].sort(byLoad).map((t) => new URL(t.url).origin);
    const next = [...new Set([...ordered, ...this.seeds])];
    const current = this.current;
    const same = next.length === this.list.length && next.every((u, i) => u === this.list[i]);
    this.list = next;
    const chosen = options.choose === true ? this.twoChoices(usable) : undefined;
    const at = next.indexOf(chosen ?? current);
    if (next[at] !== current) this.failures = 0;
    this.index = Math.max(0, at);
    if (!same) this.emit('changed', this.list);
  }

  /** The less loaded of two distinct live trackers drawn at random (ties: the first drawn). */
  private twoChoices(live: readonly KnownTracker[]): string | undefined {
    if (live.length === 0) return undefined;
    const first = Math.floor(this.random() * live.length);
    let second = Math.floor(this.random() * (live.length - 1));
    if (second >= first) second++;
    const a = live[first]!;
    const b = live[second] ?? a;
    return new URL(byLoad(b, a) < 0 ? b.url : a.url).origin;
  }

  /**
   * The current tracker asked this peer to move to `url` (rebalancing): it
   * becomes current when the cluster lists it. Returns whether it did.
   */
  moveTo(url: string): boolean {
    let origin: string;
    try {
      origin = new URL(url).origin;
    } catch {
      return false;
    }
    const at = this.list.indexOf(origin);
    if (at < 0 || origin === this.current) return false;
    this.index = at;
    this.failures = 0;
    return true;
  }

  /**
   * `url` failed (refused, lost, heartbeat timeout). Moves on to the next
   * tracker when it is the current one; returns how long to wait before the
   * next attempt.
   */
  failed(url: string = this.current): { next: string; delayMs: number } {
    if (url === this.current) {
      this.failures++;
      this.index = (this.index + 1) % this.list.length;
      this.emit('failed', url);
    }
    return { next: this.current, delayMs: this.delayMs() };
  }

  /** The wait before the next attempt: none until every tracker failed once, then growing. */
  delayMs(): number {
    // The first pass over the list tries each other tracker at once.
    if (this.failures < this.list.length) return 0;
    // A failure that starts a new round over the list counts that round as failed too.
    return this.backoff.delayMs(Math.ceil(this.failures / this.list.length));
  }

  /** Whether every tracker failed since the last success (a whole round). */
  get allFailed(): boolean {
    return this.failures >= this.list.length;
  }
}

/** Fewer sessions first, then fewer requests per second. */
function byLoad(a: KnownTracker, b: KnownTracker): number {
  return a.sessions - b.sessions || a.requestsPerSecond - b.requestsPerSecond;
}

function isHttpUrl(u: string): boolean {
  try {
    const url = new URL(u);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}
