import type { RoundTrips } from '../../core/round-trips.js';

/**
 * Liveness of the tracker session, behind a tiny interface (after nats.js
 * Heartbeat): anything heard from the tracker counts as alive; after
 * `intervalMs` of silence we ping, and a ping unanswered past its deadline
 * means the tracker is gone. The deadline is `timeoutMs`, or with
 * `roundTrips` the one the measured round trips give (round-trips.ts, at most
 * `timeoutMs`): a frozen tracker a millisecond away is left a few hundred
 * milliseconds after the ping, not seconds. Timers are unref'd so a heartbeat
 * never keeps a process up.
 */
export interface HeartbeatOptions {
  intervalMs: number;
  timeoutMs: number;
  sendPing: () => void;
  onDead: () => void;
  /** Told each ping's round trip, asked each ping's deadline. */
  roundTrips?: RoundTrips;
  now?: () => number;
}

export class Heartbeat {
  private timer: NodeJS.Timeout | undefined;
  private lastSeen = 0;
  /** When the ping now waiting for an answer went out (anything heard answers it). */
  private awaiting: number | undefined;
  /** When the ping whose pong has not come went out: the pong is a round-trip sample. */
  private sampleFrom: number | undefined;
  /** Bumped by stop() (and so by each arm()): a judgement queued before it is void. */
  private generation = 0;
  private readonly now: () => number;

  constructor(private readonly options: HeartbeatOptions) {
    this.now = options.now ?? Date.now;
  }

  start(): void {
    this.lastSeen = this.now();
    this.arm(this.options.intervalMs);
  }

  /** Something arrived from the tracker (a frame, a WebSocket ping). */
  seen(): void {
    this.lastSeen = this.now();
    // Answered: the next ping is due an interval from now, not when the deadline would have passed.
    // (Only while a ping waits: a busy session's frames re-arm no timer.)
    if (this.awaiting !== undefined) {
      this.awaiting = undefined;
      this.arm(this.options.intervalMs);
    }
  }

  /** The WebSocket pong of our ping: alive, and a round-trip sample. */
  pong(): void {
    if (this.sampleFrom !== undefined) this.options.roundTrips?.sample(this.now() - this.sampleFrom);
    this.sampleFrom = undefined;
    this.seen();
  }

  /** The deadline the next ping gets. */
  deadlineMs(): number {
    return this.options.roundTrips?.deadlineMs(this.options.timeoutMs) ?? this.options.timeoutMs;
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.generation++;
  }

  private arm(ms: number): void {
    this.stop();
    this.timer = setTimeout(() => this.tick(), Math.max(1, ms));
    this.timer.unref();
  }

  private tick(): void {
    const quiet = this.now() - this.lastSeen;
    if (quiet < this.options.intervalMs) {
      this.arm(this.options.intervalMs - quiet);
      return;
    }
    const pingAt = this.now();
    this.awaiting = pingAt;
    this.sampleFrom = pingAt;
    this.options.sendPing();
    const judge = () => {
      if (this.lastSeen < pingAt) this.options.onDead();
      else this.arm(this.options.intervalMs - (this.now() - this.lastSeen));
    };
    const generation = this.generation;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        // After the I/O already received: Node runs due timers before it reads sockets, so after
        // a stall of this process the tracker's answer may be sitting unread (tracker/ws/heartbeat.ts).
        const immediate = setImmediate(() => {
          if (this.generation === generation) judge();
        });
        immediate.unref();
      },
      Math.max(1, this.deadlineMs()),
    );
    this.timer.unref();
  }
}
