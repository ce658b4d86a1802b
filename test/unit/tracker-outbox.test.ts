import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import type { StoredMessage } from '../../src/protocol/api.js';
import type { EncodedMessage } from '../../src/tracker/services/messages.js';
import type { Caller } from '../../src/tracker/services/users.js';
import { createOutbox, wsTextFrame } from '../../src/tracker/ws/outbox.js';
import { newSession, type Session } from '../../src/tracker/ws/session.js';

// A group's message goes to every member's session in one loop: the outbox builds its frame once
// and hands the same bytes to each socket. What each session receives must still be exactly its
// own list of messages, as text frames, each written whole to the socket.

const msg = (seq: number, body = `#${seq}`): EncodedMessage => {
  const message = { messageId: `m${seq}`, streamId: 'g:club', seq, sender: 'alice', body, sentAt: seq };
  return { message: message as StoredMessage, json: JSON.stringify(message) };
};

/** A text frame's payload, the frame checked: final, text, unmasked, its length right. */
function payload(frame: Buffer): Buffer {
  expect(frame[0]).toBe(0x81);
  const len = frame[1]!;
  expect(len & 0x80).toBe(0);
  const [head, n] =
    len === 127
      ? [10, Number(frame.readBigUInt64BE(2))]
      : len === 126
        ? [4, frame.readUInt16BE(2)]
        : [2, len];
  expect(frame.length).toBe(head + n);
  return frame.subarray(head);
}

function session(id: string) {
  /** Whole frames written to the socket as they are (the transport). */
  const frames: { data: Buffer }[] = [];
  /** Messages handed to ws to frame. */
  const sent: { data: Buffer | string; binary: boolean }[] = [];
  const corks = { depth: 0 };
  const socket = {
    OPEN: 1,
    readyState: 1,
    bufferedAmount: 0,
    extensions: '',
    send: (data: Buffer | string, options?: { binary: boolean }) =>
      sent.push({ data, binary: options?.binary ?? true }),
  } as unknown as WebSocket;
  const transport = {
    cork: () => void corks.depth++,
    uncork: () => void corks.depth--,
    write: (data: Buffer) => frames.push({ data }) > 0,
  };
  const s: Session = newSession(id, socket, transport, { userId: id } as Caller);
  const seqs = () =>
    frames.map((f) => {
      const parsed = JSON.parse(payload(f.data).toString()) as { type: string; items: StoredMessage[] };
      expect(parsed.type).toBe('messages');
      return parsed.items.map((m) => m.seq);
    });
  return { s, frames, sent, seqs, corks };
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
    expect(JSON.parse(payload(c!.frames[0]!.data).toString()).items[1].body).toBe(
      'another message with the same seq',
    );
    expect(d!.seqs()).toEqual([[2]]);
  });

  it("writes a group message to each member's socket as one whole frame, built once", () => {
    // At 1,000 members, ws would build 1,000 headers and make 2,000 corked writes per message.
    const outbox = createOutbox(pino({ level: 'silent' }));
    const members = Array.from({ length: 1000 }, (_, i) => session(`m${i}`));
    const one = msg(1);
    for (const m of members) outbox.sendMessages(m.s, [one]);
    expect(members.map((m) => m.frames.length)).toEqual(members.map(() => 1));
    expect(members.reduce((n, m) => n + m.sent.length, 0)).toBe(0);
    expect(new Set(members.map((m) => m.frames[0]!.data)).size).toBe(1);
    expect(members[999]!.seqs()).toEqual([[1]]);
  });

  it('frames payloads of every length class as ws does', () => {
    for (const n of [0, 125, 126, 65535, 65536, 300_000]) {
      const text = 'é'.repeat(n >> 1) + 'a'.repeat(n & 1);
      const frame = wsTextFrame(text);
      expect(payload(frame).length).toBe(n);
      expect(payload(frame).toString('utf8')).toBe(text);
    }
  });

  it('hands the payload to ws when the session negotiated an extension (ws must transform it)', () => {
    const outbox = createOutbox(pino({ level: 'silent' }));
    const a = session('a');
    (a.s.socket as unknown as { extensions: string }).extensions = 'permessage-deflate';
    outbox.sendMessages(a.s, [msg(3)]);
    expect(a.frames).toEqual([]);
    expect(a.sent.length).toBe(1);
    expect(a.sent[0]!.binary).toBe(false);
    expect(JSON.parse(a.sent[0]!.data.toString()).items[0].seq).toBe(3);
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

  it("writes a group's receipts to its sender as whole frames, one write each, in order", () => {
    // Each member's acknowledgement that moved is a receipt frame to the sender: at 1,000 members,
    // ws would build 999 headers and queue 1,998 writes for one burst.
    const outbox = createOutbox(pino({ level: 'silent' }));
    const sender = session('alice');
    const readers = Array.from({ length: 999 }, (_, i) => `m${i}`);
    for (const reader of readers)
      outbox.sendBurst(sender.s, {
        type: 'receipt',
        streamId: 'g:club',
        reader,
        delivered: 5,
        read: 0,
        at: 1,
      });
    expect(sender.sent.length).toBe(0);
    expect(sender.frames.length).toBe(999);
    expect(sender.corks.depth).toBe(1);
    const got = sender.frames.map(
      (f) => JSON.parse(payload(f.data).toString()) as { type: string; reader: string },
    );
    expect(got.every((r) => r.type === 'receipt')).toBe(true);
    expect(got.map((r) => r.reader)).toEqual(readers);
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
  const parsed = (f: { data: Buffer }) =>
    JSON.parse(payload(f.data).toString()) as {
      type: string;
      id?: number;
      items?: { id: number; seq: number }[];
    };

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
