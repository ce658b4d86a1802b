import type { Clock, ClockTimer } from '../../src/wire/index.js';

interface Pending {
  atMs: number;
  fn: () => void;
  everyMs: number | null;
  cancelled: boolean;
}

/** A clock that moves only when advance() says: timers fire in deadline order, intervals again and again. */
export class FakeClock implements Clock {
  #nowMs = 0;
  #pending: Pending[] = [];

  now(): number {
    return this.#nowMs;
  }

  setTimeout(fn: () => void, ms: number): ClockTimer {
    return this.#add(fn, ms, null);
  }

  setInterval(fn: () => void, ms: number): ClockTimer {
    return this.#add(fn, ms, Math.max(1, ms));
  }

  /** Moves time on by `ms`, running every timer that falls due on the way, at its own time. */
  advance(ms: number): void {
    const until = this.#nowMs + ms;
    for (;;) {
      const next = this.#pending
        .filter((p) => !p.cancelled && p.atMs <= until)
        .sort((a, b) => a.atMs - b.atMs)[0];
      if (next === undefined) break;
      this.#nowMs = next.atMs;
      if (next.everyMs === null) next.cancelled = true;
      else next.atMs += next.everyMs;
      next.fn();
    }
    this.#pending = this.#pending.filter((p) => !p.cancelled);
    this.#nowMs = until;
  }

  #add(fn: () => void, ms: number, everyMs: number | null): ClockTimer {
    const p: Pending = { atMs: this.#nowMs + Math.max(0, ms), fn, everyMs, cancelled: false };
    this.#pending.push(p);
    return {
      cancel: () => {
        p.cancelled = true;
      },
    };
  }
}
