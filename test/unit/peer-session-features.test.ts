import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { TrackerPool } from '../../src/peer/tracker/pool.js';
import { TrackerSession } from '../../src/peer/tracker/session.js';
import { featuresToEnable } from '../../src/peer/tracker/session-features.js';
import { SESSION_CLOSE, SESSION_PROTOCOL_VERSION } from '../../src/protocol/session.js';
import { until } from '../helpers/wait.js';

// What the peer daemon's session asks of a tracker, by what its welcome lists, against fake
// trackers on real sockets: one as trackers were before the features list (it refuses a hello
// with a field it does not know and does not know `enable`), and newer ones.

const PEER = 'c'.repeat(64);
const FILE = 'd'.repeat(64);
/** The hello fields every tracker version knows: anything else, an old tracker refuses. */
const OLD_HELLO_FIELDS = ['type', 'v', 'id', 'peerId', 'addresses', 'seeding'];
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/**
 * A tracker that welcomes a hello with `features` in its welcome (none: no list, as before it
 * existed), acks what carries an id, and answers `enable` as `onEnable` says. Like every tracker
 * before the list, it refuses a hello with unknown fields (4400) and a frame type it does not know.
 */
async function fakeTracker(features: string[] | undefined, onEnable: 'ack' | 'refuse' | 'unknown') {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  const heard: Record<string, unknown>[] = [];
  wss.on('connection', (ws) => {
    ws.on('message', (data) => {
      const m = JSON.parse(String(data)) as { type: string; id?: number; [k: string]: unknown };
      heard.push(m);
      if (m.type === 'hello') {
        if (Object.keys(m).some((k) => !OLD_HELLO_FIELDS.includes(k))) {
          ws.send(JSON.stringify({ type: 'error', id: m.id, code: 'PROTOCOL_ERROR', message: 'bad hello' }));
          ws.close(SESSION_CLOSE.BAD_HELLO, 'bad hello');
          return;
        }
        ws.send(
          JSON.stringify({
            type: 'welcome',
            v: SESSION_PROTOCOL_VERSION,
            id: m.id ?? 0,
            sessionId: 's1',
            trackerId: 'fake',
            userId: 'u',
            peerId: PEER,
            heartbeatIntervalMs: 60_000,
            heartbeatTimeoutMs: 60_000,
            ...(features === undefined ? {} : { features }),
          }),
        );
        return;
      }
      if (m.type === 'enable' && onEnable !== 'ack') {
        const message = onEnable === 'unknown' ? 'unknown session message type "enable"' : 'no';
        ws.send(JSON.stringify({ type: 'error', id: m.id, code: 'PROTOCOL_ERROR', message }));
        return;
      }
      if (m.id !== undefined) ws.send(JSON.stringify({ type: 'ack', id: m.id }));
    });
  });
  cleanups.push(() => new Promise<void>((r) => wss.close(() => r())));
  return { url: `http://127.0.0.1:${(wss.address() as AddressInfo).port}`, heard };
}

/** The daemon's session against `url`, connected; then an announce acked, so anything it sent first has arrived. */
async function connected(url: string) {
  const session = new TrackerSession({
    pool: new TrackerPool([url], { backoffMs: [60_000], jitter: 0 }),
    getToken: () => 'token',
    registration: () => ({ peerId: PEER, addresses: [], seeding: [], watching: [] }),
  });
  cleanups.push(() => session.stop());
  const welcomed = once(session, 'connected');
  session.start();
  await welcomed;
  await session.announce([FILE]);
  return session;
}

describe('peer session: optional features', () => {
  it('asks nothing of a tracker whose welcome has no list, and stays connected to it', async () => {
    const old = await fakeTracker(undefined, 'unknown');
    const session = await connected(old.url);
    expect(old.heard.map((m) => m.type)).toEqual(['hello', 'announce']);
    expect(Object.keys(old.heard[0]!).sort()).toEqual([...OLD_HELLO_FIELDS].sort());
    expect(session.state).toBe('connected');
    expect(session.features).toEqual([]);
  });

  it('enables the features the welcome lists that it reads, first of its frames, and none it does not know', async () => {
    const tracker = await fakeTracker(['futureThing', 'receiptBatches'], 'ack');
    const session = await connected(tracker.url);
    expect(tracker.heard.map((m) => m.type)).toEqual(['hello', 'enable', 'announce']);
    expect(tracker.heard[1]).toMatchObject({ features: ['receiptBatches'] });
    await until('the enable is acknowledged', () => session.features.length === 1, 5_000);
    expect(session.features).toEqual(['receiptBatches']);
  });

  it('keeps the session when the tracker refuses the enable, with no feature on', async () => {
    const tracker = await fakeTracker(['sentBatches', 'receiptBatches'], 'refuse');
    const session = await connected(tracker.url);
    expect(tracker.heard.map((m) => m.type)).toEqual(['hello', 'enable', 'announce']);
    expect(tracker.heard[1]).toMatchObject({ features: ['sentBatches', 'receiptBatches'] });
    expect(session.state).toBe('connected');
    expect(session.features).toEqual([]);
  });

  it('decides from the welcome alone', () => {
    expect(featuresToEnable({})).toEqual([]);
    expect(featuresToEnable({ features: [] })).toEqual([]);
    expect(featuresToEnable({ features: ['receiptBatches', 'sentBatches', 'other'] })).toEqual([
      'sentBatches',
      'receiptBatches',
    ]);
    expect(featuresToEnable({ features: ['sentBatches'] }, ['receiptBatches'])).toEqual([]);
  });
});
