import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TicketRenewal } from '../../src/peer/files/download/ticket-renewal.js';
import { CoterieError } from '../../src/protocol/errors.js';
import { readTicketTimes } from '../../src/protocol/tickets.js';

// A connection's ticket is renewed at about 2/3 of its lifetime; a refusal for good ends the
// download, a tracker that does not answer is asked again until the ticket expires.

const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
/** The shape of a ticket (the renewal reads its times, never trusts them). */
const fakeTicket = (lifetimeS: number, n = 0) => {
  const iat = Math.floor(Date.now() / 1000);
  return `${b64({ alg: 'EdDSA' })}.${b64({ iat, exp: iat + lifetimeS, n })}.sig`;
};

describe('ticket renewal', () => {
  beforeEach(() => {
    // performance too: the renewal's deadlines come from the real clock's performance.now().
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('reads a ticket’s times without trusting it, and nothing from garbage', () => {
    const t = fakeTicket(600);
    expect(readTicketTimes(t)).toEqual({ iat: expect.any(Number), exp: expect.any(Number) });
    for (const bad of [
      '',
      'x',
      'a.b.c',
      `${b64({})}.${b64({ iat: 5, exp: 1 })}.s`,
      `a.${b64({ iat: 'x' })}.s`,
    ])
      expect(readTicketTimes(bad)).toBeUndefined();
  });

  it('renews at about 2/3 of the lifetime, again and again', async () => {
    let issued = 0;
    const sent: string[] = [];
    const r = new TicketRenewal({
      getTicket: async () => fakeTicket(30, ++issued),
      send: (t) => {
        sent.push(t);
        return true;
      },
      onRefused: () => expect.unreachable(),
      random: () => 0.5,
    });
    r.start(fakeTicket(30));
    await vi.advanceTimersByTimeAsync(17_000);
    expect(sent).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(3_000); // 30 s × (0.6 + 0.13 × 0.5) ≈ 20 s
    expect(sent).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(40_000);
    expect(sent).toHaveLength(3);
    r.stop();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(sent).toHaveLength(3);
  });

  it('ends the download when the tracker refuses for good (NOT_A_MEMBER)', async () => {
    const refused: string[] = [];
    const r = new TicketRenewal({
      getTicket: async () => {
        throw new CoterieError('NOT_A_MEMBER', 'not a member of group films');
      },
      send: () => expect.unreachable(),
      onRefused: (e) => refused.push(e.code),
      random: () => 0,
    });
    r.start(fakeTicket(10));
    await vi.advanceTimersByTimeAsync(30_000);
    expect(refused).toEqual(['NOT_A_MEMBER']);
  });

  it('asks again while the tracker does not answer, until the ticket expires', async () => {
    let asked = 0;
    const r = new TicketRenewal({
      getTicket: async () => {
        asked++;
        throw new CoterieError('TRACKER_UNAVAILABLE', 'no tracker answers');
      },
      send: () => expect.unreachable(),
      onRefused: () => expect.unreachable(),
      random: () => 0,
    });
    r.start(fakeTicket(30));
    await vi.advanceTimersByTimeAsync(60_000);
    expect(asked).toBeGreaterThan(2);
    const atExpiry = asked;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(asked).toBe(atExpiry);
    r.stop();
  });
});
