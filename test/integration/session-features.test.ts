import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ClientOptions } from 'ws';
import { pinnedConnection } from '../../bench/lib/tracker-pins.js';
import { TrackerPool } from '../../src/peer/tracker/pool.js';
import { TrackerSession } from '../../src/peer/tracker/session.js';
import type { MessagingEvent, TrackerMessage } from '../../src/protocol/session.js';
import { newTimeOrderedId } from '../../src/protocol/streams.js';
import {
  greet,
  openSession,
  randomPeerId,
  SessionClient,
  trackerPerFile,
  userToken,
} from '../helpers/tracker.js';
import { until } from '../helpers/wait.js';

// Optional session features over real sessions to a real tracker (its own process, SQLite): the
// welcome lists what the tracker offers, a client switches features on with `enable` after it,
// and the peer daemon's session (TrackerSession, the daemon's own code) does so by itself, then
// gets `sent_batch` and `receipts` frames. Bad `enable` frames get a coded error and the session
// goes on.

describe('session: optional features', () => {
  const t = trackerPerFile();

  it('lists its features in the welcome', async () => {
    const token = await userToken(t.tracker.url, 'feat-list');
    const welcome = await greet(await openSession(t.tracker.url, token));
    expect(welcome).toMatchObject({ type: 'welcome', features: ['sentBatches', 'receiptBatches'] });
  });

  it('switches a feature on from the enable on, and refuses a bad enable whole with PROTOCOL_ERROR', async () => {
    const base = t.tracker.url;
    const token = await userToken(base, 'feat-raw');
    await userToken(base, 'feat-raw-to');
    const s = await openSession(base, token);
    // Before hello: refused, the session goes on.
    s.raw({ type: 'enable', id: 'early', features: ['sentBatches'] });
    expect(await s.next('error')).toMatchObject({ id: 'early', code: 'PROTOCOL_ERROR' });
    await greet(s);
    const send = (id: number) =>
      s.raw({ type: 'send', id, to: 'feat-raw-to', clientId: newTimeOrderedId(), body: `m${id}` });
    // Junk of every kind: each answered with a coded error, none ends the session.
    const bad: object[] = [
      { type: 'enable', id: 1, features: ['sentBatches', 'noSuchFeature'] },
      { type: 'enable', id: 2, features: [] },
      { type: 'enable', id: 3, features: 'sentBatches' },
      { type: 'enable', id: 4, features: ['sent-batches'] },
      { type: 'enable', id: 5, features: ['x'.repeat(40)] },
      { type: 'enable', id: 6, features: Array(33).fill('sentBatches') },
      { type: 'enable', id: 7, features: ['sentBatches'], extra: true },
      { type: 'enable', id: 8, features: [1] },
    ];
    for (const frame of bad) s.raw(frame);
    for (let id = 1; id <= bad.length; id++) {
      const e = (await s.next('error')) as Extract<TrackerMessage, { type: 'error' }>;
      expect(e.code).toBe('PROTOCOL_ERROR');
      expect([1, 2, 3, 4, 5, 6, 7, 8]).toContain(e.id);
    }
    // The refused enable switched nothing on: a send is answered by its own `sent`.
    send(10);
    expect(await s.next(['sent', 'sent_batch'])).toMatchObject({ type: 'sent', id: 10 });
    s.raw({ type: 'enable', id: 11, features: ['sentBatches'] });
    expect(await s.next(['ack', 'error'])).toEqual({ type: 'ack', id: 11 });
    send(12);
    const batch = await s.next(['sent', 'sent_batch']);
    expect(batch.type).toBe('sent_batch');
    expect((batch as Extract<TrackerMessage, { type: 'sent_batch' }>).items.map((i) => i.id)).toEqual([12]);
    // Frames shaped like an enable, with every kind of value: each answered, ack or coded error.
    const frames = fc.sample(
      fc.record(
        {
          features: fc.oneof(
            fc.jsonValue(),
            fc.array(fc.constantFrom('sentBatches', 'receiptBatches', 'other', '', 'a b'), { maxLength: 4 }),
          ),
          extra: fc.jsonValue(),
        },
        { requiredKeys: [] },
      ),
      { numRuns: 100, seed: 17 },
    );
    for (const [i, f] of frames.entries()) s.raw({ type: 'enable', id: 100 + i, ...f });
    for (let i = 0; i < frames.length; i++) {
      const answer = await s.next(['ack', 'error']);
      if (answer.type === 'error') expect(answer.code).toBe('PROTOCOL_ERROR');
    }
    // Enabling again is harmless, and the session still answers.
    s.raw({ type: 'enable', id: 13, features: ['sentBatches', 'receiptBatches'] });
    expect(await s.next(['ack', 'error'])).toEqual({ type: 'ack', id: 13 });
    s.raw({ type: 'ping', id: 14 });
    expect(await s.next('pong')).toEqual({ type: 'pong', id: 14 });
  });

  it("the daemon's session enables what the tracker lists and reads sent_batch and receipts", async () => {
    const base = t.tracker.url;
    const [st, rt] = await Promise.all([userToken(base, 'feat-daemon'), userToken(base, 'feat-reader')]);
    const frames = new Map<string, number>();
    const session = new TrackerSession({
      pool: new TrackerPool([base]),
      getToken: () => st,
      registration: () => ({ peerId: randomPeerId(), addresses: [], seeding: [], watching: [] }),
      // The test's tracker is on https with a certificate pinned by the harness.
      trust: { webSocketOptions: () => pinnedConnection(base) as ClientOptions },
      observeFrame: (type) => frames.set(type, (frames.get(type) ?? 0) + 1),
    });
    const receipts: MessagingEvent[] = [];
    session.on('messaging', (e) => {
      if (e.type === 'receipt') receipts.push(e);
    });
    session.start();
    try {
      await until('the daemon enabled both features', () => session.features.length === 2, 10_000);
      expect([...session.features].sort()).toEqual(['receiptBatches', 'sentBatches']);
      const reader = await SessionClient.connect(base, 'feat-reader', rt);
      const SENDS = 50;
      const answers = await Promise.all(
        Array.from({ length: SENDS }, (_, i) =>
          session.request({
            type: 'send',
            to: 'feat-reader',
            clientId: newTimeOrderedId(),
            body: `d${i}`,
          } as never),
        ),
      );
      // Each send resolved with its own answer, taken out of the batches.
      expect(answers.map((a) => (a as { seq: number }).seq)).toEqual(
        Array.from({ length: SENDS }, (_, i) => i + 1),
      );
      await until('the reader has every message', () => reader.received.length === SENDS, 10_000);
      await until('the daemon has a receipt', () => receipts.length > 0, 10_000);
      await reader.close();
      expect(frames.get('sent') ?? 0).toBe(0);
      expect(frames.get('sent_batch')).toBeGreaterThan(0);
      expect(frames.get('sent_batch')).toBeLessThanOrEqual(SENDS);
      expect(frames.get('receipt') ?? 0).toBe(0);
      expect(frames.get('receipts')).toBeGreaterThan(0);
      expect(receipts.at(-1)).toMatchObject({ type: 'receipt', reader: 'feat-reader' });
    } finally {
      session.stop();
    }
  });
});
