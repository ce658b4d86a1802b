import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PieceServer } from '../../src/wire/index.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { accepted, closedWith, helloSeeder } from '../helpers/piece-client.js';
import { servedFile } from '../helpers/served-file.js';
import { until } from '../helpers/wait.js';

// A ticket binds for its lifetime only: checked on every request, the connection closed at its
// expiry unless a `ticket` frame renewed it, and revocable (a member removed from the group).

const served = servedFile('coterie-piece-tickets-', 3 * 65536);
const { file: fx, ticket, conns } = served;
/** The tests ask for piece 0 outright: a spread seeder serves only the pieces it showed a connection. */
const serve = (options: Parameters<typeof served.serve>[0] = {}) =>
  served.serve({ spread: false, ...options });
const nowS = () => Math.floor(Date.now() / 1000);

const open = async (server: PieceServer, t: string) => {
  const c = await helloSeeder({
    port: server.port,
    identity: fx.client,
    seederPeerId: fx.seeder.peerId,
    fileId: fx.fileId,
    ticket: t,
  });
  conns.push(c.conn);
  return c;
};
const acceptedBy = async (server: PieceServer, t: string) => accepted(await open(server, t));

const request = { type: 'request', piece: 0, offset: 0, length: 1000 } as const;

describe('piece server tickets', () => {
  it('rejects a request after the ticket expired (injected clock) and closes', async () => {
    let clock = nowS();
    const { server } = await serve({ nowSeconds: () => clock });
    const c = await acceptedBy(server, await ticket({ nowSeconds: clock, ttlSeconds: 60 }));
    c.conn.write(request);
    await until('a piece', () => c.frames.some((f) => f.type === 'piece'));
    clock += 61;
    c.conn.write(request);
    expect(await closedWith(c)).toBe('TICKET_EXPIRED');
    expect(c.frames.filter((f) => f.type === 'piece')).toHaveLength(1);
    expect(c.frames).toContainEqual({
      type: 'reject',
      request: { piece: 0, offset: 0, length: 1000 },
      code: 'TICKET_EXPIRED',
      reason: '',
    });
  });

  it('closes a connection held past its ticket expiry (injected clock)', async () => {
    // Every timing of the server on a fake clock, the tickets' wall clock moving with it: the
    // hello's TLS and checks take what they take (a second under load) without using up the ticket.
    const clock = new FakeClock();
    const t0 = nowS();
    const { server } = await serve({
      clock,
      nowSeconds: () => t0 + clock.now() / 1000,
      keepaliveIntervalMs: 0,
      idleTimeoutMs: 0,
    });
    const c = await acceptedBy(server, await ticket({ nowSeconds: t0, ttlSeconds: 60 }));
    clock.advance(59_000);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(c.conn.closed).toBe(false);
    clock.advance(1_000);
    expect(await closedWith(c)).toBe('TICKET_EXPIRED');
  });

  it('closes a connection held past a 2 s ticket, in real time', async () => {
    const { server } = await serve();
    const c = await acceptedBy(server, await ticket({ ttlSeconds: 2 }));
    c.conn.write(request);
    await until('a piece', () => c.frames.some((f) => f.type === 'piece'));
    expect(await closedWith(c)).toBe('TICKET_EXPIRED');
  });

  it('keeps serving a connection renewed with a ticket frame', async () => {
    let clock = nowS();
    const { server } = await serve({ nowSeconds: () => clock });
    const c = await acceptedBy(server, await ticket({ nowSeconds: clock, ttlSeconds: 60 }));
    clock += 50;
    c.conn.write({ type: 'ticket', ticket: await ticket({ nowSeconds: clock, ttlSeconds: 60 }) });
    clock += 50; // past the first ticket's expiry, within the renewed one
    c.conn.write(request);
    await until('a piece under the renewed ticket', () => c.frames.some((f) => f.type === 'piece'));
    expect(c.conn.closed).toBe(false);
  });

  const badRenewals: [string, () => Promise<string>, string][] = [
    ['a forged ticket', () => ticket({}, fx.forger), 'TICKET_INVALID'],
    ['a ticket for another file', () => ticket({ file: 'c'.repeat(64) }), 'TICKET_WRONG_FILE'],
    ['a ticket of another user', () => ticket({ user: 'mallory' }), 'TICKET_INVALID'],
    ['a ticket of another group', () => ticket({ group: 'other' }), 'TICKET_INVALID'],
    ['an expired ticket', () => ticket({ nowSeconds: nowS() - 3600 }), 'TICKET_EXPIRED'],
    ['a garbage ticket', async () => 'not.a.jwt', 'TICKET_INVALID'],
  ];
  for (const [what, make, code] of badRenewals) {
    it(`refuses a renewal with ${what} (${code}) and closes`, async () => {
      const { server } = await serve();
      const c = await acceptedBy(server, await ticket());
      c.conn.write({ type: 'ticket', ticket: await make() });
      c.conn.write(request);
      expect(await closedWith(c)).toBe(code);
      expect(c.frames.some((f) => f.type === 'piece')).toBe(false);
    });
  }

  it('answers fuzzed ticket frames with a coded reject and keeps serving others', async () => {
    const { server } = await serve();
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 0, maxLength: 600 }), async (body) => {
        const c = await acceptedBy(server, await ticket());
        const head = Buffer.alloc(5);
        head.writeUInt32BE(body.length + 1, 0);
        head.writeUInt8(0x08, 4);
        c.conn.stream.write(Buffer.concat([head, body]));
        const code = await closedWith(c);
        expect(['PROTOCOL_ERROR', 'TICKET_INVALID', 'TICKET_EXPIRED']).toContain(code);
      }),
      { numRuns: 25 },
    );
    const c = await acceptedBy(server, await ticket());
    c.conn.write(request);
    await until('a piece', () => c.frames.some((f) => f.type === 'piece'));
  });

  it('drops a revoked user’s connections, refuses their old tickets, and takes fresh ones', async () => {
    const { server } = await serve();
    const old = await ticket({ nowSeconds: nowS() - 5 });
    const bob = await acceptedBy(server, old);
    const carol = await acceptedBy(server, await ticket({ user: 'carol' }));
    const elsewhere = await acceptedBy(server, await ticket({ group: 'music' }));
    expect(server.revokeTickets({ groupId: 'films', userId: 'bob', beforeSeconds: nowS() })).toBe(1);
    expect(await closedWith(bob)).toBe('TICKET_REVOKED');
    // Carol, and Bob's connection through another group, go on.
    for (const c of [carol, elsewhere]) {
      c.conn.write(request);
      await until('a piece', () => c.frames.some((f) => f.type === 'piece'));
    }
    expect(await closedWith(await open(server, old))).toBe('TICKET_REVOKED');
    // Accepted again later: a ticket issued after the revocation works…
    const fresh = await acceptedBy(server, await ticket({ nowSeconds: nowS() + 1 }));
    fresh.conn.write(request);
    await until('a piece', () => fresh.frames.some((f) => f.type === 'piece'));
    // …but renewing it with an old one is refused.
    fresh.conn.write({ type: 'ticket', ticket: old });
    expect(await closedWith(fresh)).toBe('TICKET_REVOKED');
  });

  it('closes the connections of a file deleted from a group, and only those', async () => {
    const { server } = await serve();
    const bob = await acceptedBy(server, await ticket());
    const carol = await acceptedBy(server, await ticket({ user: 'carol' }));
    const elsewhere = await acceptedBy(server, await ticket({ group: 'music' }));
    expect(server.dropFile(fx.fileId, 'films')).toBe(2);
    expect(await closedWith(bob)).toBe('FILE_NOT_FOUND');
    expect(await closedWith(carol)).toBe('FILE_NOT_FOUND');
    // The same bytes shared in another group go on being served there.
    elsewhere.conn.write(request);
    await until('a piece', () => elsewhere.frames.some((f) => f.type === 'piece'));
    expect(server.dropFile(fx.fileId, 'films')).toBe(0);
  });
});
