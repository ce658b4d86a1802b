import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { Heartbeat, systemHeartbeatClock } from '../../src/tracker/ws/heartbeat.js';

// The heartbeat on real sockets and the real clock, with this process's event loop stalled past
// the timeout (as a tracker's is on a loaded machine): a peer whose pong came in time, and sat
// unread in the socket while the loop stalled, is not cut; a peer that does not answer is.
// Node runs due timers before it reads sockets, so a heartbeat that judged at the timer alone
// cut every session after its own stall (what failed the storage chaos test's 300 ms heartbeats).

const OPTIONS = { heartbeatIntervalMs: 200, heartbeatTimeoutMs: 300, helloTimeoutMs: 10_000 };

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function pair(autoPong: boolean) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  cleanups.push(() => new Promise<void>((r) => wss.close(() => r())));
  const accepted = once(wss, 'connection') as Promise<[WebSocket]>;
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, { autoPong });
  cleanups.push(() => client.terminate());
  await once(client, 'open');
  const [server] = await accepted;
  const cuts: string[] = [];
  const heartbeat = new Heartbeat<WebSocket>(
    {
      ping: (s) => s.ping(),
      greeted: () => true,
      cut(s, reason) {
        cuts.push(reason);
        heartbeat.remove(s);
        s.terminate();
      },
    },
    OPTIONS,
    systemHeartbeatClock(Date.now),
  );
  server.on('pong', () => heartbeat.pong(server));
  heartbeat.add(server);
  heartbeat.start();
  cleanups.push(() => heartbeat.stop());
  return { client, cuts };
}

/** Blocks this thread: no timer, no socket read runs meanwhile. */
function stall(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    /* busy */
  }
}

describe('session heartbeat under a stalled event loop', () => {
  it('keeps a peer whose pongs arrived while the loop stalled past the timeout', async () => {
    const { client, cuts } = await pair(true);
    let pings = 0;
    // The client answers each ping at once (ws does, before this handler); then the process stalls
    // for longer than the timeout before the server side can read that pong.
    client.on('ping', () => {
      pings++;
      if (pings <= 4) stall(OPTIONS.heartbeatTimeoutMs + 200);
    });
    while (pings < 6 && client.readyState === WebSocket.OPEN) await new Promise((r) => setTimeout(r, 50));
    expect(cuts).toEqual([]);
    expect(client.readyState).toBe(WebSocket.OPEN);
  });

  it('still cuts a peer that does not answer', async () => {
    const { client, cuts } = await pair(false);
    const closed = once(client, 'close');
    await closed;
    expect(cuts).toEqual(['timeout']);
  });
});
