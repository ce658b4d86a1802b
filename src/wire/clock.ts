import type { Clock as SchedulerClock } from '../core/scheduler.js';

/** A timer from a Clock: cancel() is safe to call twice, and after it fired. */
export interface ClockTimer {
  cancel(): void;
}

/**
 * Where the wire and the download engine get their time: `now` for
 * durations and deadlines (monotonic milliseconds, the scheduler's clock),
 * and timers. Injected so that a test drives every timing by hand (a fake
 * clock) or shrinks it; the default is the real one.
 */
export interface Clock extends SchedulerClock {
  /** Runs `fn` once after `ms`; never what keeps the process alive (unref'd). */
  setTimeout(fn: () => void, ms: number): ClockTimer;
  /** Runs `fn` every `ms` until cancelled; unref'd too. */
  setInterval(fn: () => void, ms: number): ClockTimer;
}

/** The real clock: performance.now() and Node's timers, unref'd (stop() clears them, not process exit). */
export const realClock: Clock = Object.freeze({
  now: () => performance.now(),
  setTimeout(fn: () => void, ms: number): ClockTimer {
    const t = setTimeout(fn, ms);
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
  setInterval(fn: () => void, ms: number): ClockTimer {
    const t = setInterval(fn, ms);
    t.unref();
    return { cancel: () => clearInterval(t) };
  },
});
