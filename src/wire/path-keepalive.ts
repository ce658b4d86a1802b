/**
 * The keepalive of a path a router may drop silently (issue 19): a relayed
 * circuit, a hole punched over UDP. After a NAT loses its mapping (a reboot,
 * a conntrack flush, a timeout) the packets of such a link vanish without a
 * reset, and the connection would wait for the download's stall timer or the
 * wire's 60 s idle timeout. The downloader pings instead: a `ping` each
 * `intervalMs`, answered by the seeder's `pong` (only to a seeder whose hello
 * names the `ping` feature: frames.ts). Any frame received after a ping proves
 * the path, so a pong queued behind blocks on a slow relay is no miss; a ping
 * with nothing at all heard by its deadline is. `misses` in a row and the path
 * is dead: the caller closes the connection, and the download dials again
 * (direct, punched, or another relay).
 *
 * A ping's deadline follows the measured round trips (core/round-trips.ts:
 * SRTT + 4 RTTVAR, as TCP), up to `timeoutMs`, never under the pong floor
 * (PONG_FLOOR_MS, 400 ms): a pause of the seeder that no sample showed yet (a
 * garbage collection, a busy event loop) is not taken for a dead path. An
 * idle path answers a ping within a round trip; the defaults find one that
 * went silent within about 2 s (a ping each second, two misses of 0.4 to 2 s).
 */
import { PONG_FLOOR_MS, RoundTrips } from '../core/round-trips.js';
import type { Clock, ClockTimer } from './clock.js';

export interface PathKeepaliveOptions {
  /** A ping this long after the last one was answered. */
  intervalMs: number;
  /** The longest a ping's answer is waited for (the round trips usually say less). */
  timeoutMs: number;
  /** The shortest: see PONG_FLOOR_MS. */
  floorMs: number;
  /** Pings missed in a row (nothing heard by their deadline) before the path is dead. */
  misses: number;
}

export const PATH_KEEPALIVE_DEFAULTS: Readonly<PathKeepaliveOptions> = Object.freeze({
  intervalMs: 1_000,
  timeoutMs: 2_000,
  floorMs: PONG_FLOOR_MS,
  misses: 2,
});

export interface PathKeepaliveIo {
  clock: Clock;
  /** Sends a ping with this nonce; false when the connection is gone. */
  ping(nonce: number): boolean;
  /** True while we do not read (our consumer is behind): the seeder's silence is then ours. */
  notReading(): boolean;
  /** The path is dead: close the connection with this reason. */
  dead(reason: string): void;
}

export class PathKeepalive {
  readonly #o: PathKeepaliveOptions;
  readonly #io: PathKeepaliveIo;
  readonly #rtt: RoundTrips;
  #timer: ClockTimer | null = null;
  #nonce = 0;
  /** The ping waiting for its pong (its nonce and when it left), if any. */
  #outstanding: { nonce: number; at: number } | null = null;
  #heard = false;
  #missed = 0;
  #stopped = false;

  constructor(io: PathKeepaliveIo, options: Partial<PathKeepaliveOptions> = {}) {
    this.#o = { ...PATH_KEEPALIVE_DEFAULTS, ...options };
    this.#io = io;
    this.#rtt = new RoundTrips({ floorMs: this.#o.floorMs });
  }

  /** Pings missed in a row so far. */
  get missed(): number {
    return this.#missed;
  }

  start(): void {
    this.#after(this.#o.intervalMs, () => this.#ping());
  }

  /** A frame came from the seeder: the path carries. */
  heard(): void {
    this.#heard = true;
  }

  /** The seeder's pong: the round trip is a sample, the misses start over. */
  pong(nonce: number): void {
    const o = this.#outstanding;
    if (this.#stopped || o === null || o.nonce !== nonce) return; // a late one: its miss is counted
    this.#rtt.sample(this.#io.clock.now() - o.at);
    this.#outstanding = null;
    this.#missed = 0;
    this.#after(this.#o.intervalMs, () => this.#ping());
  }

  stop(): void {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#timer = null;
  }

  #after(ms: number, fn: () => void): void {
    this.#timer?.cancel();
    this.#timer = this.#stopped ? null : this.#io.clock.setTimeout(fn, ms);
  }

  #ping(): void {
    this.#nonce = (this.#nonce + 1) >>> 0;
    this.#outstanding = { nonce: this.#nonce, at: this.#io.clock.now() };
    this.#heard = false;
    if (!this.#io.ping(this.#nonce)) {
      this.stop();
      return;
    }
    const deadline = this.#rtt.deadlineMs(this.#o.timeoutMs);
    this.#after(deadline, () => this.#due(deadline));
  }

  /** A ping's deadline passed without its pong. */
  #due(deadlineMs: number): void {
    if (this.#heard || this.#io.notReading()) {
      // Blocks came meanwhile (the pong waits behind them), or we are the ones not reading.
      this.#missed = 0;
      this.#after(this.#o.intervalMs, () => this.#ping());
      return;
    }
    this.#missed++;
    if (this.#missed >= this.#o.misses) {
      this.stop();
      this.#io.dead(
        `path silent: ${this.#missed} keepalive pings in a row unanswered (${deadlineMs} ms each)`,
      );
      return;
    }
    this.#ping();
  }
}
