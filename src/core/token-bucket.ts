/**
 * A token bucket that lends: a sender takes the bytes it just put on the
 * wire (however many: a socket read or a TLS record's worth), the bucket may
 * go into debt, and waitMs() says how long until the debt is paid back at
 * the rate. Charging after the fact is what lets the limiter count wire
 * bytes (read off the socket's counters) instead of guessing them before a
 * write. Pure: the caller says what time it is.
 *
 * Rates: Infinity is unlimited (take() is then a no-op), 0 lets nothing
 * through (a paused schedule slot).
 */

/** Idle time earns at most this much credit: 200 ms of the rate (2 % of a 10 s window) rides out a late timer on a loaded machine. */
const BURST_SECONDS = 0.2;
/** ...but at least one TLS record's worth, so a slow limit still moves whole records. */
const MIN_BURST_BYTES = 64 * 1024;

export class TokenBucket {
  #rate: number;
  #tokens = 0;
  #lastMs: number;

  constructor(rateBytesPerSec = Number.POSITIVE_INFINITY, nowMs = 0) {
    this.#rate = checkedRate(rateBytesPerSec);
    this.#lastMs = nowMs;
  }

  /** Bytes per second; Infinity when unlimited. */
  get rateBytesPerSec(): number {
    return this.#rate;
  }

  get limited(): boolean {
    return this.#rate !== Number.POSITIVE_INFINITY;
  }

  /**
   * A new rate, in force at once: credit and debt are clamped to one burst
   * of the new rate, so lowering a limit does not leave a sender waiting out
   * a debt run up at the old one (a change takes effect within 1 s).
   */
  setRate(rateBytesPerSec: number, nowMs: number): void {
    this.#refill(nowMs);
    this.#rate = checkedRate(rateBytesPerSec);
    if (!this.limited) {
      this.#tokens = 0;
      return;
    }
    const burst = this.#burst();
    this.#tokens = Math.min(burst, Math.max(-burst, this.#tokens));
  }

  /** `bytes` went on the wire at `nowMs`. */
  take(bytes: number, nowMs: number): void {
    if (!this.limited) return;
    this.#refill(nowMs);
    this.#tokens -= bytes;
  }

  /** Milliseconds until the debt is paid back (0: send now; Infinity: paused). */
  waitMs(nowMs: number): number {
    if (!this.limited) return 0;
    if (this.#rate === 0) return Number.POSITIVE_INFINITY;
    this.#refill(nowMs);
    if (this.#tokens >= 0) return 0;
    return Math.ceil((-this.#tokens * 1000) / this.#rate);
  }

  #burst(): number {
    return Math.max(MIN_BURST_BYTES, this.#rate * BURST_SECONDS);
  }

  #refill(nowMs: number): void {
    const elapsed = nowMs - this.#lastMs;
    this.#lastMs = nowMs;
    if (elapsed <= 0 || !this.limited || this.#rate === 0) return;
    this.#tokens = Math.min(this.#burst(), this.#tokens + (elapsed * this.#rate) / 1000);
  }
}

function checkedRate(rate: number): number {
  if (!(rate >= 0)) throw new RangeError(`a rate must be 0 or more bytes per second, not ${rate}`);
  return rate;
}
