import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import type { StoredMessage } from '../../src/protocol/api.js';
import type { EncodedMessage } from '../../src/tracker/services/messages.js';
import type { Caller } from '../../src/tracker/services/users.js';
import { createOutbox } from '../../src/tracker/ws/outbox.js';
import { newSession, type Session } from '../../src/tracker/ws/session.js';

// A group's message goes to every member's session in one loop: the outbox builds its frame once
// and hands the same bytes to each socket. What each session receives must still be exactly its
// own list of messages, as text frames.

const msg = (seq: number, body = `#${seq}`): EncodedMessage => {
  const message = { messageId: `m${seq}`, streamId: 'g:club', seq, sender: 'alice', body, sentAt: seq };
  return { message: message as StoredMessage, json: JSON.stringify(message) };
};

function session(id: string) {
  const frames: { data: Buffer; binary: boolean }[] = [];
  const corks = { depth: 0 };
  const socket = {
    OPEN: 1,
    readyState: 1,
    bufferedAmount: 0,
    send: (data: Buffer, options?: { binary: boolean }) =>
      frames.push({ data, binary: options?.binary ?? true }),
  } as unknown as WebSocket;
  const transport = { cork: () => void corks.depth++, uncork: () => void corks.depth-- };
  const s: Session = newSession(id, socket, transport, { userId: id } as Caller);
  const seqs = () =>
    frames.map((f) => {
      expect(f.binary).toBe(false);
      const parsed = JSON.parse(f.data.toString()) as { type: string; items: StoredMessage[] };
      expect(parsed.type).toBe('messages');
      return parsed.items.map((m) => m.seq);
    });
  return { s, frames, seqs, corks };
}

describe('outbox: messages frames', () => {
  it('builds a frame once for sessions that get the same messages, and apart for different ones', () => {
    const outbox = createOutbox(pino({ level: 'silent' }));
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map(session);
    const one = msg(1);
    const two = msg(2);
    const other = msg(2, 'another message with the same seq');
    outbox.sendMessages(a!.s, [one, two]);
    // A fresh array of the same messages (as each session's order hop makes): the same bytes.
    outbox.sendMessages(b!.s, [one, two]);
    // The same length, another message: its own frame.
    outbox.sendMessages(c!.s, [one, other]);
    outbox.sendMessages(d!.s, [two]);
    expect(b!.frames[0]!.data).toBe(a!.frames[0]!.data);
    expect(c!.frames[0]!.data).not.toBe(a!.frames[0]!.data);
    expect(a!.seqs()).toEqual([[1, 2]]);
    expect(b!.seqs()).toEqual([[1, 2]]);
    expect(JSON.parse(c!.frames[0]!.data.toString()).items[1].body).toBe('another message with the same seq');
    expect(d!.seqs()).toEqual([[2]]);
  });

  it('keeps its frames apart from a caller that reuses its array', () => {
    const outbox = createOutbox(pino({ level: 'silent' }));
    const [a, b] = ['a', 'b'].map(session);
    const list = [msg(1)];
    outbox.sendMessages(a!.s, list);
    list[0] = msg(7);
    outbox.sendMessages(b!.s, list);
    expect(a!.seqs()).toEqual([[1]]);
    expect(b!.seqs()).toEqual([[7]]);
  });

  it('splits a long list into frames under the cap, the same for each session', () => {
    const outbox = createOutbox(pino({ level: 'silent' }));
    const [a, b] = ['a', 'b'].map(session);
    const big = Array.from({ length: 6 }, (_, i) => msg(i + 1, 'x'.repeat(60 * 1024)));
    outbox.sendMessages(a!.s, big);
    outbox.sendMessages(b!.s, [...big]);
    expect(a!.frames.length).toBeGreaterThan(1);
    expect(a!.seqs().flat()).toEqual([1, 2, 3, 4, 5, 6]);
    expect(b!.frames.every((f, i) => f.data === a!.frames[i]!.data)).toBe(true);
  });
});

describe('outbox: bursts', () => {
  it('holds a burst of answers until the end of the turn, but not a push behind them', async () => {
    const outbox = createOutbox(pino({ level: 'silent' }));
    const [a, b] = ['a', 'b'].map(session);
    for (const x of [a!, b!]) {
      outbox.sendBurst(x.s, { type: 'ack', id: 1 });
      outbox.sendBurst(x.s, { type: 'ack', id: 2 });
      expect(x.corks.depth).toBe(1);
    }
    outbox.sendMessages(a!.s, [msg(1)]);
    expect(a!.corks.depth).toBe(0);
    expect(b!.corks.depth).toBe(1);
    await new Promise((r) => setImmediate(r));
    expect(a!.corks.depth).toBe(0);
    expect(b!.corks.depth).toBe(0);
    // The next burst corks again, once.
    outbox.sendBurst(a!.s, { type: 'ack', id: 3 });
    expect(a!.corks.depth).toBe(1);
    await new Promise((r) => setImmediate(r));
    expect(a!.corks.depth).toBe(0);
  });
});

describe('outbox: answers to sends', () => {
  const result = (seq: number) => ({
    messageId: `m${seq}`,
    streamId: 'd:alice:bob',
    seq,
    state: 'sent' as const,
    sentAt: 1,
    duplicate: false,
  });
  const parsed = (f: { data: Buffer | string }) =>
    JSON.parse(f.data.toString()) as { type: string; id?: number; items?: { id: number; seq: number }[] };

  it('merges the answers of one commit into one sent_batch, in order, for a session that asked', async () => {
    const outbox = createOutbox(pino({ level: 'silent' }));
    const a = session('a');
    a.s.sentBatches = true;
    for (let i = 1; i <= 500; i++) outbox.sendSent(a.s, i, result(i));
    await Promise.resolve();
    expect(a.frames.map((f) => parsed(f).type)).toEqual(['sent_batch']);
    expect(parsed(a.frames[0]!).items!.map((x) => [x.id, x.seq])).toEqual(
      Array.from({ length: 500 }, (_, i) => [i + 1, i + 1]),
    );
  });

  it('answers each send with its own sent for a session that did not ask', async () => {
    const outbox = createOutbox(pino({ level: 'silent' }));
    const a = session('a');
    for (let i = 1; i <= 3; i++) outbox.sendSent(a.s, i, result(i));
    await Promise.resolve();
    expect(a.frames.map((f) => [parsed(f).type, parsed(f).id])).toEqual([
      ['sent', 1],
      ['sent', 2],
      ['sent', 3],
    ]);
  });

  it('writes waiting answers before any other frame to the session, and splits past the cap', async () => {
    const outbox = createOutbox(pino({ level: 'silent' }));
    const a = session('a');
    a.s.sentBatches = true;
    outbox.sendSent(a.s, 1, result(1));
    outbox.sendSent(a.s, 2, result(2));
    outbox.sendMessages(a.s, [msg(9)]);
    outbox.sendSent(a.s, 3, result(3));
    outbox.send(a.s, { type: 'pong', id: 7 });
    for (let i = 4; i < 4 + 2500; i++) outbox.sendSent(a.s, i, result(i));
    await Promise.resolve();
    const frames = a.frames.map(parsed);
    expect(frames.map((f) => f.type)).toEqual([
      'sent_batch',
      'messages',
      'sent_batch',
      'pong',
      'sent_batch',
      'sent_batch',
      'sent_batch',
    ]);
    expect(frames.filter((f) => f.type === 'sent_batch').map((f) => f.items!.length)).toEqual([
      2, 1, 1000, 1000, 500,
    ]);
    const ids = frames.flatMap((f) => (f.type === 'sent_batch' ? f.items!.map((x) => x.id) : []));
    expect(ids).toEqual(Array.from({ length: 2503 }, (_, i) => i + 1));
  });
});
