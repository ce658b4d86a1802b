import { randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * The web UI's logins. `coterie ui` (holding the control token) asks for a
 * one-time ticket; the browser trades it once for a session, kept in an
 * HttpOnly SameSite=Strict cookie. Each session carries its own CSRF token,
 * which the page reads from /api/session and sends back in a header on every
 * state-changing request (a synchronizer token: a foreign page can neither read
 * the cookie nor the token). All of it lives in memory: a restarted daemon
 * forgets every login, and `coterie ui` prints a new link.
 */

export interface UiSession {
  id: string;
  csrf: string;
  createdAt: number;
  lastSeenAt: number;
}

export interface SessionLimits {
  /** How long a printed link stays good. */
  ticketTtlMs: number;
  /** A session unused this long is forgotten. */
  idleTtlMs: number;
  /** At most this many live sessions (the oldest go first). */
  maxSessions: number;
}

export const SESSION_LIMITS: SessionLimits = {
  ticketTtlMs: 5 * 60_000,
  idleTtlMs: 24 * 3600_000,
  maxSessions: 32,
};

const newSecret = () => randomBytes(32).toString('base64url');

/** Equal strings, compared in constant time (a secret must not leak through timing). */
export function sameSecret(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export class UiSessions {
  private readonly tickets = new Map<string, number>();
  private readonly sessions = new Map<string, UiSession>();

  constructor(
    private readonly limits: SessionLimits = SESSION_LIMITS,
    private readonly now: () => number = Date.now,
  ) {}

  /** A new one-time ticket (what `coterie ui` puts in its link). */
  issueTicket(): string {
    const ticket = newSecret();
    this.tickets.set(ticket, this.now() + this.limits.ticketTtlMs);
    return ticket;
  }

  /** Trades a ticket for a session; undefined when unknown, used or expired. */
  redeem(ticket: string): UiSession | undefined {
    const expiresAt = this.tickets.get(ticket);
    this.tickets.delete(ticket); // one use, whatever happens next
    this.sweep();
    if (expiresAt === undefined || expiresAt < this.now()) return undefined;
    const at = this.now();
    const session: UiSession = { id: newSecret(), csrf: newSecret(), createdAt: at, lastSeenAt: at };
    this.sessions.set(session.id, session);
    while (this.sessions.size > this.limits.maxSessions) {
      this.sessions.delete(this.sessions.keys().next().value!);
    }
    return session;
  }

  /** The live session of a cookie value, touched. */
  find(id: string | undefined): UiSession | undefined {
    if (id === undefined) return undefined;
    const s = this.sessions.get(id);
    if (s === undefined) return undefined;
    if (s.lastSeenAt + this.limits.idleTtlMs < this.now()) {
      this.sessions.delete(id);
      return undefined;
    }
    s.lastSeenAt = this.now();
    return s;
  }

  end(id: string): void {
    this.sessions.delete(id);
  }

  private sweep(): void {
    const t = this.now();
    for (const [ticket, expiresAt] of this.tickets) if (expiresAt < t) this.tickets.delete(ticket);
  }
}
