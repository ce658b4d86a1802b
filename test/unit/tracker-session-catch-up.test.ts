import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import type { StoredMessage } from '../../src/protocol/api.js';
import { SESSION_CLOSE } from '../../src/protocol/session.js';
import type { EncodedMessage } from '../../src/tracker/services/messages.js';
import type { Caller } from '../../src/tracker/services/users.js';
import type { Outbox } from '../../src/tracker/ws/outbox.js';
import type { SessionRegistry } from '../../src/tracker/ws/registry.js';
import { newSession, type Session } from '../../src/tracker/ws/session.js';
import { createSessionCatchUp } from '../../src/tracker/ws/session-catch-up.js';
import type { SessionOrder } from '../../src/tracker/ws/session-order.js';

// A catch-up whose store read fails part way must not go on to push what was held meanwhile:
// the peer acknowledges the highest seq it stores, so the seqs the catch-up did not send would
// be behind its cursor for good. The session ends instead, and its peer catches up again.

const STREAM = 'g:chat';
const msg = (seq: number): EncodedMessage => {
  const message = {
    messageId: `m${seq}`,
    streamId: STREAM,
    seq,
    sender: 'alice',
    body: `#${seq}`,
    sentAt: seq,
  };
  return { message: message as StoredMessage, json: JSON.stringify(message) };
};

function setup(pages: () => AsyncGenerator<EncodedMessage[]>) {
  const sent: unknown[] = [];
  const pushed: number[] = [];
  const closes: number[] = [];
  const socket = { bufferedAmount: 0, close: (code: number) => closes.push(code) } as unknown as WebSocket;
  const s: Session = newSession('s1', socket, { cork() {}, uncork() {}, write: () => true }, {
    userId: 'bob',
  } as Caller);
  const catchUp = createSessionCatchUp({
    messages: {
      catchUp: (_user: string, positions: (p: ReadonlyMap<string, number>) => void) => {
        positions(new Map([[STREAM, 1]]));
        return pages();
      },
    } as never,
    registry: { all: () => [s], ofUser: () => [s] } as unknown as SessionRegistry,
    outbox: {
      sendMessages: (_s: Session, items: readonly EncodedMessage[]) =>
        sent.push(items.map((m) => m.message.seq)),
      send: (_s: Session, m: { type: string }) => sent.push(m.type),
    } as unknown as Outbox,
    order: {
      reset() {},
      own() {},
      push: (_s: Session, items: readonly EncodedMessage[]) =>
        pushed.push(...items.map((m) => m.message.seq)),
    } as SessionOrder,
    logger: pino({ level: 'silent' }),
    now: () => 0,
  });
  return { s, catchUp, sent, pushed, closes };
}

describe('tracker session catch-up', () => {
  it('sends the pages, then what was held, then synced', async () => {
    const { s, catchUp, sent, pushed, closes } = setup(async function* () {
      yield [msg(2), msg(3)];
    });
    s.held = [msg(4)];
    await catchUp.run(s);
    expect(sent).toEqual([[2, 3], 'synced']);
    expect(pushed).toEqual([4]);
    expect(closes).toEqual([]);
  });

  it('ends the session when the store fails part way, pushing nothing held', async () => {
    const { s, catchUp, sent, pushed, closes } = setup(async function* () {
      yield [msg(2), msg(3)];
      throw new Error('store down');
    });
    s.held = [msg(9)];
    await catchUp.run(s);
    expect(sent).toEqual([[2, 3]]);
    expect(pushed).toEqual([]);
    expect(closes).toEqual([SESSION_CLOSE.RESYNC]);
    expect(s.held).toBeUndefined();
  });
});
