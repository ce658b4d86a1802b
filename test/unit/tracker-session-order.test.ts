import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import type { StoredMessage } from '../../src/protocol/api.js';
import { SESSION_CLOSE } from '../../src/protocol/session.js';
import type { EncodedMessage } from '../../src/tracker/services/messages.js';
import type { Caller } from '../../src/tracker/services/users.js';
import type { Outbox } from '../../src/tracker/ws/outbox.js';
import { newSession, type Session } from '../../src/tracker/ws/session.js';
import { createSessionOrder } from '../../src/tracker/ws/session-order.js';

// The last hop of "each stream in order": a push that does not follow on from what a session was
// sent waits while the missing seqs are read, so a peer never stores seq n after seq n + k (the
// chaos test caught a topic message stored after a hundred newer ones).

const STREAM = 't:chat:news';
const msg = (seq: number, sender = 'alice', streamId = STREAM): EncodedMessage => {
  const message = {
    messageId: `m${seq}`,
    streamId,
    seq,
    sender,
    body: `#${seq}`,
    sentAt: seq,
  } as StoredMessage;
  return { message, json: JSON.stringify(message) };
};

function setup(stored: EncodedMessage[]) {
  const frames: number[][] = [];
  const reads: [number, number][] = [];
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const outbox = {
    sendMessages: (_s: Session, items: readonly EncodedMessage[]) => {
      if (items.length > 0) frames.push(items.map((m) => m.message.seq));
    },
  } as unknown as Outbox;
  const order = createSessionOrder({
    messages: {
      // As the store: bob's readable seqs strictly between the two, once the test lets the read finish.
      async between(userId, streamId, after, before) {
        reads.push([after, before]);
        await gate;
        return stored.filter(
          (m) =>
            m.message.streamId === streamId &&
            m.message.sender !== userId &&
            m.message.seq > after &&
            m.message.seq < before,
        );
      },
    },
    outbox,
    logger: pino({ level: 'silent' }),
  });
  const closes: number[] = [];
  const socket = { close: (code: number) => closes.push(code) } as unknown as WebSocket;
  const s = newSession('s1', socket, { cork() {}, uncork() {}, write: () => true }, {
    userId: 'bob',
  } as Caller);
  return { order, s, frames, reads, release, closes };
}

describe('tracker session order', () => {
  it('sends pushes that follow on at once, and reads the seqs missing before one that does not', async () => {
    const stored = [1, 2, 3, 4, 5, 6].map((n) => msg(n));
    const { order, s, frames, reads, release } = setup(stored);
    order.reset(s, new Map([[STREAM, 1]]));
    order.push(s, [stored[1]!]); // 2 follows 1
    order.push(s, [stored[4]!]); // 5: 3 and 4 were missed
    order.push(s, [stored[5]!]); // 6 waits behind the read
    expect(frames).toEqual([[2]]);
    expect(reads).toEqual([[2, 5]]);
    release();
    await new Promise((r) => setTimeout(r, 10));
    expect(frames).toEqual([[2], [3, 4, 5, 6]]);
    order.push(s, [msg(7)]);
    expect(frames.at(-1)).toEqual([7]);
    expect(reads).toHaveLength(1);
  });

  it('moves past the user own messages, and lets a stream without a position start anywhere', () => {
    const { order, s, frames, reads } = setup([]);
    order.reset(s, new Map([[STREAM, 3]]));
    order.own(s, msg(4, 'bob'));
    order.push(s, [msg(5)]);
    order.push(s, [msg(40, 'carol', 'd:bob:carol')]);
    order.push(s, [msg(41, 'carol', 'd:bob:carol')]);
    expect(frames).toEqual([[5], [40], [41]]);
    expect(reads).toEqual([]);
  });

  it('sends a repeat (the peer drops it); after a failed read sends nothing past the gap and ends the session', async () => {
    const { order, s, frames, closes } = setup([]);
    order.reset(s, new Map([[STREAM, 5]]));
    order.push(s, [msg(5)]);
    expect(frames).toEqual([[5]]);
    const failing = createSessionOrder({
      messages: { between: () => Promise.reject(new Error('store down')) },
      outbox: {
        sendMessages: (_s: Session, items: readonly EncodedMessage[]) => {
          if (items.length > 0) frames.push(items.map((m) => m.message.seq));
        },
      } as unknown as Outbox,
      logger: pino({ level: 'silent' }),
    });
    failing.reset(s, new Map([[STREAM, 5]]));
    failing.push(s, [msg(9)]);
    failing.push(s, [msg(10)]);
    await new Promise((r) => setTimeout(r, 10));
    // 9 and 10 would move the peer's cursor past 6 to 8 for good: its next session catches up instead.
    expect(frames).toEqual([[5]]);
    expect(closes).toEqual([SESSION_CLOSE.RESYNC]);
  });
});
