import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createAckWindow, type DeliveryCursor } from '../../src/peer/messages/ack-window.js';
import { createMessagingService, type MessagingService } from '../../src/peer/messages/messaging.js';
import { PeerStore } from '../../src/peer/store/index.js';
import type { TrackerHttpClient } from '../../src/peer/tracker/http-client.js';
import type { TrackerSession } from '../../src/peer/tracker/session.js';
import type { StoredMessage } from '../../src/protocol/api.js';
import { tempDir } from '../helpers/temp-dir.js';
import { until } from '../helpers/wait.js';

// A busy group's member acknowledged every pushed frame: at 1,000 members and 50 messages a
// second, 50,000 acknowledgements a second for the tracker to read, commit and answer with
// receipts (issue 20's fan-out). The peer now acknowledges at once, then at most once per
// window, each stream's highest seq.

type Ack = { type: string; cursors: { streamId: string; delivered?: number; read?: number }[] };

let dir: string;
let store: PeerStore;
let m: MessagingService | undefined;
beforeEach(() => {
  dir = tempDir('coterie-acks-').path;
  store = new PeerStore(dir);
});
afterEach(() => {
  m?.stop();
  store.close();
});

function messaging(deliveryAckWindowMs: number) {
  const sent: Ack[] = [];
  const session = Object.assign(new EventEmitter(), {
    state: 'connected',
    post: (frame: Ack) => {
      sent.push(frame);
      return true;
    },
  });
  m = createMessagingService({
    store,
    http: {} as TrackerHttpClient,
    session: session as unknown as TrackerSession,
    userId: () => 'bob',
    notify: () => {},
    deliveryAckWindowMs,
  });
  return { m, acks: () => sent.filter((f) => f.type === 'ack_messages') };
}

const message = (streamId: string, seq: number): StoredMessage => ({
  messageId: `${streamId}-${seq}`,
  streamId,
  seq,
  kind: 'group',
  sender: 'alice',
  groupId: streamId.slice(2),
  body: `message ${seq}`,
  sentAt: 1_000 + seq,
});

describe('delivery acknowledgements', () => {
  it('acknowledges the first push at once and merges those that follow within the window', async () => {
    const { m, acks } = messaging(50);
    for (let seq = 1; seq <= 20; seq++) {
      m.onSessionMessaging({ type: 'messages', items: [message('g:club', seq)] });
      if (seq % 4 === 0) m.onSessionMessaging({ type: 'messages', items: [message('g:band', seq / 4)] });
    }
    // The first at once (a conversation's receipt is not held back)…
    expect(acks()).toEqual([{ type: 'ack_messages', cursors: [{ streamId: 'g:club', delivered: 1 }] }]);
    // …the other 24 frames in one acknowledgement at the window's end: each stream's highest seq.
    await until('the window ends', () => acks().length === 2, 5_000, 5);
    expect(acks()[1]!.cursors).toEqual([
      { streamId: 'g:club', delivered: 20 },
      { streamId: 'g:band', delivered: 5 },
    ]);
    // Everything was stored before it was acknowledged.
    expect(store.inbox.count({ unread: false })).toBe(25);
  });

  it('acknowledges at once again after a window with nothing in it', async () => {
    const { m, acks } = messaging(20);
    m.onSessionMessaging({ type: 'messages', items: [message('d:alice:bob', 1)] });
    expect(acks()).toHaveLength(1);
    // The window after the first acknowledgement passes empty: the spell is over.
    await new Promise((r) => setTimeout(r, 60));
    m.onSessionMessaging({ type: 'messages', items: [message('d:alice:bob', 2)] });
    expect(acks().map((a) => a.cursors)).toEqual([
      [{ streamId: 'd:alice:bob', delivered: 1 }],
      [{ streamId: 'd:alice:bob', delivered: 2 }],
    ]);
  });

  it('a stopped daemon sends none of what waited', async () => {
    const { m, acks } = messaging(20);
    m.onSessionMessaging({ type: 'messages', items: [message('g:club', 1)] });
    m.onSessionMessaging({ type: 'messages', items: [message('g:club', 2)] });
    m.stop();
    await new Promise((r) => setTimeout(r, 60));
    expect(acks()).toHaveLength(1);
  });
});

// Every member of a group gets its first message at the same moment: with windows of one length,
// all their acknowledgements would come back to the tracker in the same millisecond, every window,
// just as the group's next message is pushed. The first window of a spell ends at a random point.
describe('the acknowledgement window of a spell', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('ends its first window at a random point of it, and the next ones a whole window later', () => {
    vi.useFakeTimers();
    const sent: DeliveryCursor[][] = [];
    const w = createAckWindow(
      100,
      (c) => sent.push(c),
      () => 0.75,
    );
    w.add([{ streamId: 'g:club', delivered: 1 }]);
    expect(sent).toHaveLength(1);
    w.add([{ streamId: 'g:club', delivered: 2 }]);
    vi.advanceTimersByTime(24);
    expect(sent).toHaveLength(1);
    // (1 - 0.75) × 100 ms after the first acknowledgement, not 100.
    vi.advanceTimersByTime(1);
    expect(sent).toEqual([[{ streamId: 'g:club', delivered: 1 }], [{ streamId: 'g:club', delivered: 2 }]]);
    w.add([{ streamId: 'g:club', delivered: 3 }]);
    vi.advanceTimersByTime(99);
    expect(sent).toHaveLength(2);
    vi.advanceTimersByTime(1);
    expect(sent[2]).toEqual([{ streamId: 'g:club', delivered: 3 }]);
    w.stop();
  });

  it('spreads the first windows of members that got the same message over the whole window', () => {
    vi.useFakeTimers();
    let seed = 1;
    // A small deterministic generator: the test does not depend on Math.random's luck.
    const random = () => {
      seed = (seed * 48271) % 2147483647;
      return seed / 2147483647;
    };
    const ends: number[] = [];
    const windows = Array.from({ length: 1000 }, () =>
      createAckWindow(100, () => ends.push(Date.now()), random),
    );
    const start = Date.now();
    for (const w of windows) w.add([{ streamId: 'g:club', delivered: 1 }]);
    for (const w of windows) w.add([{ streamId: 'g:club', delivered: 2 }]);
    ends.length = 0;
    vi.advanceTimersByTime(100);
    expect(ends).toHaveLength(1000);
    // In each tenth of the window, about a tenth of the members: none of them all at once.
    const perTenth = Array.from(
      { length: 10 },
      (_, k) => ends.filter((t) => t - start > k * 10 && t - start <= (k + 1) * 10).length,
    );
    for (const n of perTenth) expect(n).toBeGreaterThan(50);
    for (const n of perTenth) expect(n).toBeLessThan(150);
    for (const w of windows) w.stop();
  });
});
