/**
 * The piece server's ticket checks, for a connection's whole life: a ticket
 * binds its holder until its expiry only, and a revoked one not at all.
 *
 * - `TicketGuard.check` verifies a ticket offline (signature with the
 *   cluster's keys, expiry, file, peer; fetching the keys again when the
 *   signature fails, the cluster may have rotated) and refuses one issued
 *   before a revocation of its user in its group (TICKET_REVOKED).
 * - A `TicketBinding` holds the ticket a connection was let in with: a timer
 *   closes the connection at its expiry (TICKET_EXPIRED), `expired()` is asked
 *   on every request, and `renew()` takes a fresh ticket (a `ticket` frame),
 *   checked exactly as a hello's plus the same user and group, and moves the
 *   deadline.
 *
 * Revocations: the tracker says "tickets of user U in group G issued before
 * second T are void" (`tickets_revoked` on the session, where T is just past
 * the removal or leave). The seeder remembers T and refuses such tickets in
 * hellos and renewals; a ticket lives at most MAX_TICKET_TTL_SECONDS, so a
 * revocation older than that voids nothing still valid and is forgotten.
 * Tickets the tracker issues after T (the user accepted again; stamped no
 * earlier than T) work.
 */
import type { JSONWebKeySet } from 'jose';
import { CoterieError, isCoterieError } from '../protocol/errors.js';
import { MAX_TICKET_TTL_SECONDS, type TicketClaims, verifyTicket } from '../protocol/tickets.js';
import { type Clock, type ClockTimer, realClock } from './clock.js';

export interface TicketRevocation {
  groupId: string;
  userId: string;
  /** Tickets of that user in that group with `iat` before this (seconds) are void. */
  beforeSeconds: number;
}

export interface TicketGuardOptions {
  jwks: JSONWebKeySet;
  refreshJwks?: (() => Promise<JSONWebKeySet>) | undefined;
  jwksRefreshMinIntervalMs: number;
  logger: { warn(obj: object, msg?: string): void };
  /** Expiry timers and the key refresh's rate limit (the real clock by default). */
  clock?: Clock | undefined;
  /**
   * For tests: the wall clock tickets are checked against, in seconds (tickets
   * carry epoch seconds, which a monotonic clock cannot tell).
   */
  nowSeconds?: (() => number) | undefined;
}

export interface TicketExpectation {
  fileId: string;
  peerId: string;
}

/** Whatever a binding closes: the piece server's FramedConnection fits. */
export interface Closable {
  readonly closed: boolean;
  close(code: 'TICKET_EXPIRED', reason: string): Promise<unknown>;
}

const revocationKey = (groupId: string, userId: string) => `${groupId}\u0000${userId}`;
/** setTimeout's longest delay; a deadline further away is re-armed when it fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class TicketGuard {
  #jwks: JSONWebKeySet;
  #lastRefreshMs = Number.NEGATIVE_INFINITY; // the first refresh is not held back
  readonly #revoked = new Map<string, number>();
  readonly #o: TicketGuardOptions;
  readonly clock: Clock;

  constructor(options: TicketGuardOptions) {
    this.#o = options;
    this.#jwks = options.jwks;
    this.clock = options.clock ?? realClock;
  }

  setJwks(jwks: JSONWebKeySet): void {
    this.#jwks = jwks;
  }

  /** Seconds since the epoch (fractional with the real clock). */
  now(): number {
    return this.#o.nowSeconds?.() ?? Date.now() / 1000;
  }

  async check(ticket: string, expect: TicketExpectation): Promise<TicketClaims> {
    const claims = await this.#verify(ticket, expect);
    if (this.isRevoked(claims)) {
      throw new CoterieError(
        'TICKET_REVOKED',
        `the ticket was revoked: '${claims.user}' left or was removed from group '${claims.group}'`,
      );
    }
    return claims;
  }

  /** Records a revocation; true if it is new or later than the one known. */
  revoke(r: TicketRevocation): boolean {
    this.#forgetOld();
    const key = revocationKey(r.groupId, r.userId);
    const known = this.#revoked.get(key);
    if (known !== undefined && known >= r.beforeSeconds) return false;
    this.#revoked.set(key, r.beforeSeconds);
    return true;
  }

  isRevoked(claims: TicketClaims): boolean {
    const before = this.#revoked.get(revocationKey(claims.group, claims.user));
    return before !== undefined && claims.iat < before;
  }

  #forgetOld(): void {
    // A minute of slack: a ticket may be stamped up to a second late (see the tracker's tickets service).
    const horizon = this.now() - MAX_TICKET_TTL_SECONDS - 60;
    for (const [key, before] of this.#revoked) if (before < horizon) this.#revoked.delete(key);
  }

  async #verify(ticket: string, expect: TicketExpectation): Promise<TicketClaims> {
    const o = this.#o;
    const expectation = {
      ...expect,
      ...(o.nowSeconds === undefined ? {} : { nowSeconds: Math.floor(o.nowSeconds()) }),
    };
    try {
      return await verifyTicket(ticket, this.#jwks, expectation);
    } catch (err) {
      if (
        !isCoterieError(err, 'TICKET_INVALID') ||
        o.refreshJwks === undefined ||
        this.clock.now() - this.#lastRefreshMs < o.jwksRefreshMinIntervalMs
      ) {
        throw err;
      }
      this.#lastRefreshMs = this.clock.now();
      try {
        this.#jwks = await o.refreshJwks();
      } catch (refreshErr) {
        // The tracker being unreachable does not make the ticket valid: refuse with the ticket's error.
        o.logger.warn({ err: refreshErr }, 'cannot refresh the cluster keys');
        throw err;
      }
      return await verifyTicket(ticket, this.#jwks, expectation);
    }
  }
}

/** The ticket one connection was let in with, and its deadline. */
export class TicketBinding {
  #claims: TicketClaims;
  #timer: ClockTimer | null = null;
  #stopped = false;

  constructor(
    readonly guard: TicketGuard,
    readonly conn: Closable,
    /** The connecting peer: renewals must name it too. */
    readonly peerId: string,
    claims: TicketClaims,
  ) {
    this.#claims = claims;
    this.#arm();
  }

  get claims(): TicketClaims {
    return this.#claims;
  }

  expired(): boolean {
    return this.guard.now() >= this.#claims.exp;
  }

  /** Checks a renewed ticket as a hello's (same file, peer, user and group) and moves the deadline. */
  async renew(ticket: string): Promise<void> {
    const old = this.#claims;
    const next = await this.guard.check(ticket, { fileId: old.file, peerId: this.peerId });
    if (next.user !== old.user || next.group !== old.group) {
      throw new CoterieError(
        'TICKET_INVALID',
        'the renewed ticket names another user or group than the connection: open a new connection',
      );
    }
    this.#claims = next;
    this.#arm();
  }

  stop(): void {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#timer = null;
  }

  #arm(): void {
    this.#timer?.cancel();
    if (this.#stopped) return;
    const ms = Math.max(0, (this.#claims.exp - this.guard.now()) * 1000);
    // Never what keeps a process alive (the clock's timers are unref'd); stop() cancels it when the connection ends.
    this.#timer = this.guard.clock.setTimeout(
      () => {
        this.#timer = null;
        if (this.#stopped || this.conn.closed) return;
        // A timer fires early against an injected clock, or at its 24.8-day cap: look again.
        if (!this.expired()) {
          this.#arm();
          return;
        }
        void this.conn.close(
          'TICKET_EXPIRED',
          'the ticket expired and was not renewed: ask the tracker for a new one',
        );
      },
      Math.min(ms, MAX_TIMER_MS),
    );
  }
}
