import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import type { MessageSent } from '../../src/protocol/api.js';
import type { SendInput } from '../../src/tracker/services/messages.js';
import type { Caller } from '../../src/tracker/services/users.js';
import { createFrameHandler, type FrameHandlerDeps } from '../../src/tracker/ws/frame-handler.js';
import { createOutbox } from '../../src/tracker/ws/outbox.js';
import { newSession, type Session } from '../../src/tracker/ws/session.js';

// The frames of one session are handled in their order. A direct send to a known user, with
// nothing queued before it, is handed to the messages service within the call that took the
// frame off the socket (submitNow): no promise chain per message. Anything else, and any send
// behind a frame still being handled, waits its turn in the session's queue (submit).

const committed = (): Promise<MessageSent> => new Promise(() => {});

function harness(known: (input: SendInput) => boolean) {
  const calls: string[] = [];
  let releaseAnnounce: () => void = () => {};
  const messages: FrameHandlerDeps['messages'] = {
    submitNow(_user, input) {
      if (!known(input)) return undefined;
      calls.push(`now ${input.body}`);
      return { committed: committed() };
    },
    async submit(_user, input) {
      calls.push(`queued ${input.body}`);
      return { committed: committed() };
    },
    async ack(_user, cursors) {
      calls.push(`queued ack ${cursors[0]!.delivered}`);
      return { committed: Promise.resolve() };
    },
    ackNow(_user, cursors, wait) {
      if (!cursors.every((c) => c.streamId === 'g:club')) return undefined;
      calls.push(`now ack ${cursors[0]!.delivered}${wait ? ' (waited for)' : ''}`);
      return { committed: wait ? Promise.resolve() : undefined };
    },
  };
  const presence = {
    announce: () => new Promise<void>((r) => (releaseAnnounce = r)),
  } as unknown as FrameHandlerDeps['presence'];
  const onFrame = createFrameHandler({
    presence,
    files: { visible: async () => new Set<string>() },
    messages,
    registry: {} as FrameHandlerDeps['registry'],
    outbox: createOutbox(pino({ level: 'silent' })),
    catchUp: {} as FrameHandlerDeps['catchUp'],
    revocationPush: {} as FrameHandlerDeps['revocationPush'],
    trackerId: 't',
    heartbeat: { heartbeatIntervalMs: 10_000, heartbeatTimeoutMs: 5_000 },
    logger: pino({ level: 'silent' }),
  });
  const socket = { OPEN: 1, readyState: 1, bufferedAmount: 0, send() {} } as unknown as WebSocket;
  const s: Session = newSession('s', socket, { cork() {}, uncork() {}, write: () => true }, {
    userId: 'alice',
  } as Caller);
  s.info = { sessionId: 's', userId: 'alice', peerId: 'p'.repeat(64), addresses: [] };
  const frame = (m: object) => onFrame(s, Buffer.from(JSON.stringify(m)), false);
  const send = (id: number, body: string, target: object = { to: 'bob' }) =>
    frame({ type: 'send', id, ...target, clientId: `c${id}`, body });
  const settle = async () => {
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
  };
  const ack = (delivered: number, streamId = 'g:club', id?: number) =>
    frame({ type: 'ack_messages', ...(id === undefined ? {} : { id }), cursors: [{ streamId, delivered }] });
  return { calls, frame, send, ack, settle, s, release: () => releaseAnnounce() };
}

describe('tracker frame handler: sends', () => {
  it('hands a send that needs no read to the service within the call, nothing queued', () => {
    const h = harness((input) => input.to === 'bob');
    for (let i = 1; i <= 3; i++) h.send(i, `m${i}`);
    // No await: each send was taken in the call that read its frame.
    expect(h.calls).toEqual(['now m1', 'now m2', 'now m3']);
    expect(h.s.pending).toBe(0);
  });

  it('queues a send behind a frame still being handled, and everything after it, in order', async () => {
    const h = harness((input) => input.to === 'bob');
    h.send(1, 'm1');
    h.frame({ type: 'announce', id: 2, files: [] });
    h.send(3, 'm3');
    h.send(4, 'm4', { groupId: 'club' });
    h.send(5, 'm5');
    await h.settle();
    expect(h.calls).toEqual(['now m1']);
    expect(h.s.pending).toBe(4);
    h.release();
    await h.settle();
    expect(h.calls).toEqual(['now m1', 'queued m3', 'queued m4', 'queued m5']);
    expect(h.s.pending).toBe(0);
    // The queue is empty again: the next send goes straight through.
    h.send(6, 'm6');
    expect(h.calls.at(-1)).toBe('now m6');
  });

  it('queues a send that needs a read (a group, an unknown user)', async () => {
    const h = harness(() => false);
    h.send(1, 'm1', { groupId: 'club' });
    expect(h.calls).toEqual([]);
    await h.settle();
    expect(h.calls).toEqual(['queued m1']);
  });
});

describe('tracker frame handler: acknowledgements', () => {
  it('hands an acknowledgement that needs no read to the service within the call', () => {
    const h = harness(() => true);
    h.ack(1);
    h.ack(2, 'g:club', 7);
    // No await: taken in the call that read the frame, a promise asked for only with an id.
    expect(h.calls).toEqual(['now ack 1', 'now ack 2 (waited for)']);
    expect(h.s.pending).toBe(0);
  });

  it('queues an acknowledgement behind a frame still being handled, or that needs a read, in order', async () => {
    const h = harness(() => true);
    h.frame({ type: 'announce', id: 1, files: [] });
    h.ack(2);
    h.ack(3, 'g:other');
    await h.settle();
    expect(h.calls).toEqual([]);
    h.release();
    await h.settle();
    expect(h.calls).toEqual(['queued ack 2', 'queued ack 3']);
    h.ack(4, 'g:other');
    expect(h.calls.at(-1)).toBe('queued ack 3');
    await h.settle();
    expect(h.calls.at(-1)).toBe('queued ack 4');
    h.ack(5);
    expect(h.calls.at(-1)).toBe('now ack 5');
  });
});
