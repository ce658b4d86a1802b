/**
 * Liveness of the tracker session, behind a tiny interface (after nats.js
 * Heartbeat): anything heard from the tracker counts as alive; after
 * `intervalMs` of silence we ping, and `timeoutMs` more of silence means the
 * tracker is gone. Timers are unref'd so a heartbeat never keeps a process up.
 */
export interface HeartbeatOptions {
  intervalMs: number;
  timeoutMs: number;
  sendPing: () => void;
  onDead: () => void;
  now?: () => number;
}

export class Heartbeat {
  private timer: NodeJS.Timeout | undefined;
  private lastSeen = 0;
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

  /** Something arrived from the tracker (a frame, a WebSocket ping or pong). */
  seen(): void {
    this.lastSeen = this.now();
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
    this.options.sendPing();
    const judge = () => {
      if (this.lastSeen < pingAt) this.options.onDead();
      else this.arm(this.options.intervalMs - (this.now() - this.lastSeen));
    };
    const generation = this.generation;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      // After the I/O already received: Node runs due timers before it reads sockets, so after
      // a stall of this process the tracker's answer may be sitting unread (tracker/ws/heartbeat.ts).
      const immediate = setImmediate(() => {
        if (this.generation === generation) judge();
      });
      immediate.unref();
    }, this.options.timeoutMs);
    this.timer.unref();
  }
}
