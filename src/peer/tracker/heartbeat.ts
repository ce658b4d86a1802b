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
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.lastSeen < pingAt) this.options.onDead();
      else this.arm(this.options.intervalMs - (this.now() - this.lastSeen));
    }, this.options.timeoutMs);
    this.timer.unref();
  }
}
