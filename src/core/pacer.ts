/**
 * Paces a byte stream to a rate: each chunk is let through at the time a
 * steady `bytesPerSec` would have finished the bytes before it, with a burst
 * of up to `burstBytes` let through at once (so small frames are not delayed
 * by a few microseconds each). Pure: the caller says what time it is and
 * waits the returned milliseconds.
 */
export class Pacer {
  #nextFreeAt = 0;
  constructor(
    readonly bytesPerSec: number,
    readonly burstBytes: number = Math.max(16 * 1024, bytesPerSec / 10),
  ) {
    if (!(bytesPerSec > 0)) throw new RangeError('a pacer needs a positive rate');
  }

  /** Milliseconds to wait before sending `bytes` at `nowMs` (0: send now). */
  delayFor(bytes: number, nowMs: number): number {
    const burstMs = (this.burstBytes * 1000) / this.bytesPerSec;
    // Idle time earns at most one burst of credit.
    const start = Math.max(this.#nextFreeAt, nowMs - burstMs);
    this.#nextFreeAt = start + (bytes * 1000) / this.bytesPerSec;
    return Math.max(0, this.#nextFreeAt - burstMs - nowMs);
  }
}
