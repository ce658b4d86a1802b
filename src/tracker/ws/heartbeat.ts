/**
 * Session liveness, in the nats.js `Heartbeat` habit: a small class that asks
 * three things of its owner, so that a unit test drives it with a fake clock
 * and fake pongs.
 */

/** What the heartbeat asks of the sessions it watches. */
export interface HeartbeatHost<S> {
  /** Sends a ping; the owner calls `pong(s)` when the answer comes. */
  ping(s: S): void;
  /** Whether the session said hello (one that does not in time is closed). */
  greeted(s: S): boolean;
  /** Ends a session that missed its pong, or its hello. */
  cut(s: S, reason: 'timeout' | 'no hello'): void;
}

export interface HeartbeatClock {
  /** Milliseconds. */
  now(): number;
  /** Calls `fn` every `ms` until the returned function is called; never keeps a process alive. */
  every(ms: number, fn: () => void): () => void;
  /**
   * Calls `fn` once the I/O already received has been handled (setImmediate: after the poll
   * phase). Without it (a fake clock), at once.
   */
  afterIo?(fn: () => void): void;
}

export interface HeartbeatOptions {
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
}

/** The process's clock: `now` as given (the tracker's), timers unref'd. */
export function systemHeartbeatClock(now: () => number): HeartbeatClock {
  return {
    now,
    every(ms, fn) {
      const timer = setInterval(fn, ms);
      timer.unref();
      return () => clearInterval(timer);
    },
    afterIo: (fn) => void setImmediate(fn),
  };
}

interface Beat {
  readonly openedAt: number;
  lastPingAt: number;
  /** When the peer last sent anything (a frame, its own ping). */
  lastHeardAt: number;
  pongPending: boolean;
}

/**
 * Pings each session silent for an interval and cuts one whose pong is overdue
 * by the timeout, or that has not said hello within `helloTimeoutMs`. What the
 * peer sends shows it alive as a pong does (`heard`): a peer pinging on its own
 * heartbeat (every 2 s by default, peer/tracker/heartbeat.ts) is never pinged
 * back, so the session carries one ping exchange per peer period, not two
 * heartbeats side by side. One timer for
 * all sessions (thousands per tracker) instead of one each: it ticks at a
 * quarter of the shorter period, so a deadline is acted on at most that late.
 *
 * An overdue session is cut only after the I/O already received is handled
 * (`clock.afterIo`): Node runs due timers before it reads sockets, so a
 * tracker whose own event loop stalled past the timeout (a loaded machine, a
 * long synchronous SQLite transaction) would otherwise cut every session whose
 * pong came in time and sat unread in the socket meanwhile. Short heartbeats
 * on a loaded machine dropped live peers this way.
 */
export class Heartbeat<S> {
  private readonly beats = new Map<S, Beat>();
  private cancel: (() => void) | undefined;

  constructor(
    private readonly host: HeartbeatHost<S>,
    private readonly options: HeartbeatOptions & { helloTimeoutMs: number },
    private readonly clock: HeartbeatClock,
  ) {}

  start(): void {
    if (this.cancel !== undefined) return;
    const { heartbeatIntervalMs, heartbeatTimeoutMs } = this.options;
    // At least 10 ms: a tiny test timeout must not spin the event loop.
    const tickMs = Math.max(10, Math.floor(Math.min(heartbeatIntervalMs, heartbeatTimeoutMs) / 4));
    this.cancel = this.clock.every(tickMs, () => this.sweep());
  }

  /** Clears the timer; the sessions stay listed (a start() would go on with them). */
  stop(): void {
    this.cancel?.();
    this.cancel = undefined;
  }

  /** Watches a new session: its first ping is due one interval from now. */
  add(s: S): void {
    const t = this.clock.now();
    this.beats.set(s, { openedAt: t, lastPingAt: t, lastHeardAt: t, pongPending: false });
  }

  pong(s: S): void {
    const beat = this.beats.get(s);
    if (beat !== undefined) beat.pongPending = false;
  }

  /** The peer sent something (a frame, a WebSocket ping): alive, as if it answered a ping. */
  heard(s: S): void {
    const beat = this.beats.get(s);
    if (beat === undefined) return;
    beat.pongPending = false;
    beat.lastHeardAt = this.clock.now();
  }

  remove(s: S): void {
    this.beats.delete(s);
  }

  get size(): number {
    return this.beats.size;
  }

  private sweep(): void {
    const { heartbeatIntervalMs, heartbeatTimeoutMs, helloTimeoutMs } = this.options;
    const t = this.clock.now();
    const overdue: [S, Beat][] = [];
    for (const [s, beat] of this.beats) {
      if (t - beat.openedAt > helloTimeoutMs && !this.host.greeted(s)) {
        this.host.cut(s, 'no hello');
        continue;
      }
      if (beat.pongPending) {
        if (t - beat.lastPingAt >= heartbeatTimeoutMs) overdue.push([s, beat]);
      } else if (t - Math.max(beat.lastPingAt, beat.lastHeardAt) >= heartbeatIntervalMs) {
        beat.pongPending = true;
        beat.lastPingAt = t;
        this.host.ping(s);
      }
    }
    if (overdue.length === 0) return;
    const cut = () => {
      for (const [s, beat] of overdue) {
        // Still watched, and no pong read since: this ping's pong is really missing.
        if (this.beats.get(s) === beat && beat.pongPending) this.host.cut(s, 'timeout');
      }
    };
    if (this.clock.afterIo === undefined) cut();
    else this.clock.afterIo(cut);
  }
}
