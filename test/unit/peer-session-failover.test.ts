import { once } from 'node:events';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { TrackerPool } from '../../src/peer/tracker/pool.js';
import { TrackerSession } from '../../src/peer/tracker/session.js';
import { SESSION_PROTOCOL_VERSION } from '../../src/protocol/session.js';

// The peer's session leaving a tracker that froze (SIGSTOP: its kernel still takes our pings, it
// never answers) or died (SIGKILL: the connection closes), against two fake trackers on real
// sockets. Each pong deadline is as long as the ceiling would allow (60 s) and each backoff after
// a whole round 60 s: a session that waited either out would not finish within the test's bound.

const PEER = 'b'.repeat(64);
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A tracker that welcomes every hello; `sockets` are its connections' TCP sockets, newest last. */
async function fakeTracker(name: string) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  const sockets: Socket[] = [];
  wss.on('connection', (ws, req) => {
    sockets.push(req.socket);
    ws.on('message', (data) => {
      const m = JSON.parse(String(data)) as { type: string; id?: number };
      if (m.type !== 'hello') return;
      ws.send(
        JSON.stringify({
          type: 'welcome',
          v: SESSION_PROTOCOL_VERSION,
          id: m.id ?? 0,
          sessionId: `${name}-${sockets.length}`,
          trackerId: name,
          userId: 'u',
          peerId: PEER,
          heartbeatIntervalMs: 100,
          heartbeatTimeoutMs: 60_000,
        }),
      );
    });
  });
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        wss.close(() => r());
      }),
  );
  return { url: `http://127.0.0.1:${(wss.address() as AddressInfo).port}`, sockets };
}

async function connectedPair() {
  const a = await fakeTracker('a');
  const b = await fakeTracker('b');
  const pool = new TrackerPool([a.url, b.url], { backoffMs: [0, 60_000], jitter: 0 });
  const session = new TrackerSession({
    pool,
    getToken: () => 'token',
    registration: () => ({ peerId: PEER, addresses: [], seeding: [], watching: [] }),
    heartbeatIntervalMs: 100,
    heartbeatTimeoutMs: 60_000,
    pongFloorMs: 300,
  });
  cleanups.push(() => session.stop());
  const first = once(session, 'connected');
  session.start();
  const [, url] = (await first) as [unknown, string];
  expect(url).toBe(a.url);
  return { a, b, session };
}

describe('peer session failover', () => {
  it('leaves a frozen tracker at its round-trip deadline, not the 60 s ceiling', async () => {
    const { a, b, session } = await connectedPair();
    // A few pings answered: the deadline comes from measured round trips.
    await new Promise((r) => setTimeout(r, 500));
    const lost = once(session, 'disconnected') as Promise<[string, string]>;
    const moved = once(session, 'connected') as Promise<[unknown, string]>;
    a.sockets.at(-1)!.pause(); // frozen: nothing it is sent is read, nothing answered
    expect((await lost)[0]).toBe(a.url);
    expect((await moved)[1]).toBe(b.url);
  }, 15_000);

  it('moves on at once when the connection closes: the first retry waits for no backoff', async () => {
    const { a, b, session } = await connectedPair();
    const failover = once(session, 'failover') as Promise<[string, string]>;
    const moved = once(session, 'connected') as Promise<[unknown, string]>;
    a.sockets.at(-1)!.destroy(); // killed: the connection drops
    expect(await failover).toEqual([a.url, b.url]);
    expect((await moved)[1]).toBe(b.url);
    expect(session.url).toBe(b.url);
  }, 15_000);
});
