import { CoterieError, type ErrorCode, isCoterieError } from '../../../protocol/errors.js';
import { readTicketTimes } from '../../../protocol/tickets.js';
import { type Clock, type ClockTimer, realClock } from '../../../wire/index.js';

/**
 * Keeps one seeder connection's ticket fresh. A seeder closes a connection
 * when its ticket expires (tickets are short: 10 minutes by default), so at
 * about 2/3 of the ticket's lifetime, jittered so that the connections of
 * many downloads do not all ask the tracker at once, this asks the tracker
 * for a fresh ticket and hands it to the seeder over the open connection (a
 * `ticket` frame). A renewal the tracker refuses for good (the user was
 * removed from the group, or it is gone) ends the download with that error;
 * a tracker that does not answer is asked again until the ticket expires,
 * after which the connection closes and reconnects as any other.
 */
export interface TicketRenewalOptions {
  getTicket: () => Promise<string>;
  /** Sends the renewed ticket on the connection; false when it is gone. */
  send: (ticket: string) => boolean;
  /** The tracker refused for good: the download ends with this error. */
  onRefused: (err: CoterieError) => void;
  /** Renewed: for the download's event stream. */
  onRenewed?: () => void;
  /** For tests: a number in [0, 1). */
  random?: () => number;
  /** The download's clock (the real one by default). */
  clock?: Clock;
}

/** Refusals that no later attempt will change: the download ends with them. */
export const TICKET_REFUSALS: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'NOT_A_MEMBER',
  'GROUP_NOT_FOUND',
  'FILE_NOT_FOUND',
]);

/** Between 60 % and 73 % of the lifetime: about 2/3, with a 1/3-lifetime margin before expiry. */
const RENEW_AT = 0.6;
const RENEW_JITTER = 0.13;
/** A renewal that failed for a passing reason is tried again this often (at most). */
const RETRY_MS = 2_000;

export class TicketRenewal {
  #timer: ClockTimer | null = null;
  #stopped = false;
  readonly #o: TicketRenewalOptions;
  readonly #clock: Clock;

  constructor(options: TicketRenewalOptions) {
    this.#o = options;
    this.#clock = options.clock ?? realClock;
  }

  /** Plans the renewal of `ticket`, just obtained (or just sent). */
  start(ticket: string): void {
    const times = readTicketTimes(ticket);
    if (times === undefined || this.#stopped) return;
    const lifetimeMs = (times.exp - times.iat) * 1000;
    const frac = RENEW_AT + RENEW_JITTER * (this.#o.random ?? Math.random)();
    // Counted from now, not from iat: the tracker's clock may differ from ours.
    this.#schedule(lifetimeMs * frac, this.#clock.now() + lifetimeMs);
  }

  stop(): void {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#timer = null;
  }

  #schedule(delayMs: number, expiresAtMs: number): void {
    this.#timer?.cancel();
    // Never what keeps a process alive (the clock's timers are unref'd); stop() clears it with the connection.
    this.#timer = this.#clock.setTimeout(() => void this.#renew(expiresAtMs), Math.max(0, delayMs));
  }

  async #renew(expiresAtMs: number): Promise<void> {
    this.#timer = null;
    let ticket: string;
    try {
      ticket = await this.#o.getTicket();
    } catch (err) {
      if (this.#stopped) return;
      const e = isCoterieError(err)
        ? err
        : new CoterieError('TRACKER_UNAVAILABLE', `ticket renewal failed: ${String(err)}`, { cause: err });
      if (TICKET_REFUSALS.has(e.code)) {
        this.stop();
        this.#o.onRefused(e);
        return;
      }
      const left = expiresAtMs - this.#clock.now();
      if (left > 0) this.#schedule(Math.min(RETRY_MS, left / 2), expiresAtMs);
      return;
    }
    if (this.#stopped || !this.#o.send(ticket)) return;
    this.#o.onRenewed?.();
    this.start(ticket);
  }
}
