import { EventEmitter } from 'node:events';
import { beforeEach, describe, expect, it } from 'vitest';
import { createMessagingService } from '../../src/peer/messages/messaging.js';
import { PeerStore } from '../../src/peer/store/index.js';
import type { TrackerHttpClient } from '../../src/peer/tracker/http-client.js';
import type { TrackerSession } from '../../src/peer/tracker/session.js';
import { CoterieError } from '../../src/protocol/errors.js';
import { tempDir } from '../helpers/temp-dir.js';
import { until } from '../helpers/wait.js';

// The outbox keeps a message until a tracker that heard it answers: a call cut off (the
// tracker lost mid-call, the daemon stopping) leaves it pending, and a stopping daemon never
// touches its store after close (an unhandled rejection there crashed daemons in the chaos run).

let dir: string;
let store: PeerStore;
beforeEach(() => {
  dir = tempDir('coterie-outbox-').path;
  store = new PeerStore(dir);
});

/**
 * The daemon's two ways to the tracker (its session when connected, else HTTP): each call ends
 * the way the test says, when it says, and says which way it went.
 */
function trackerCalls() {
  const waiting: { via: string; resolve: (v: unknown) => void; reject: (e: unknown) => void }[] = [];
  const http = {
    call: () => new Promise((resolve, reject) => waiting.push({ via: 'http', resolve, reject })),
  } as unknown as TrackerHttpClient;
  const request = (frame: { type: string }) =>
    new Promise((resolve, reject) =>
      waiting.push({
        via: frame.type,
        resolve: (v) => resolve({ type: 'sent', id: 7, state: 'sent', sentAt: 1, ...(v as object) }),
        reject,
      }),
    );
  return { http, request, waiting };
}

describe.each([
  ['connected', 'send'],
  ['connecting', 'http'],
] as const)('the outbox, session %s', (state, via) => {
  function messaging(
    { http, request }: ReturnType<typeof trackerCalls>,
    resendBackoffMs?: { first: number; max: number },
  ) {
    const session = Object.assign(new EventEmitter(), { state, send: async () => {}, request });
    return createMessagingService({
      store,
      http,
      session: session as unknown as TrackerSession,
      userId: () => 'alice',
      notify: () => {},
      ...(resendBackoffMs === undefined ? {} : { resendBackoffMs }),
    });
  }

  const settle = () => new Promise((r) => setImmediate(r));

  it('keeps a send whose call was cut off (not a tracker refusal) pending', async () => {
    const calls = trackerCalls();
    const { waiting } = calls;
    const m = messaging(calls);
    const answer = m.sendMessage({ to: 'bob' }, 'hello');
    await settle();
    expect(waiting.map((w) => w.via)).toEqual([via]);
    waiting[0]!.reject(new Error('tracker lost'));
    await expect(answer).resolves.toMatchObject({ state: 'pending' });
    expect(store.outbox.pending().map((r) => r.body)).toEqual(['hello']);
  });

  it('drops a send the tracker refused, with its error', async () => {
    const calls = trackerCalls();
    const { waiting } = calls;
    const m = messaging(calls);
    const answer = m.sendMessage({ to: 'nobody' }, 'hello');
    await settle();
    waiting[0]!.reject(new CoterieError('USER_NOT_FOUND', 'no such user'));
    await expect(answer).rejects.toMatchObject({ code: 'USER_NOT_FOUND' });
    expect(store.outbox.pending()).toEqual([]);
  });

  it('a resend under way when the daemon stops leaves the closed store alone', async () => {
    const calls = trackerCalls();
    const { waiting } = calls;
    const m = messaging(calls);
    const answer = m.sendMessage({ to: 'bob' }, 'queued');
    await settle();
    waiting[0]!.reject(new CoterieError('TRACKER_UNAVAILABLE', 'no tracker answers'));
    await expect(answer).resolves.toMatchObject({ state: 'pending' });
    // The session catches up: the pending message goes out again…
    m.onSessionMessaging({ type: 'synced', count: 0, at: Date.now() });
    await settle();
    expect(waiting).toHaveLength(2);
    // …and the daemon stops while that call is in flight.
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      m.stop();
      store.close();
      waiting[1]!.reject(new CoterieError('USER_NOT_FOUND', 'answered after the stop'));
      await settle();
      await settle();
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled).toEqual([]);
    const reopened = new PeerStore(dir);
    expect(reopened.outbox.pending().map((r) => r.body)).toEqual(['queued']);
    reopened.close();
  });

  it('sends a send left pending while the session stays connected again on a timer, with its client id', async () => {
    // A tracker answered UNAVAILABLE (its store failing over) and the session never dropped: no
    // catch-up comes, and the message once stayed pending for good (the demo's carol waited).
    const calls = trackerCalls();
    const { waiting } = calls;
    const m = messaging(calls, { first: 20, max: 40 });
    const answer = m.sendMessage({ to: 'bob' }, 'later');
    await settle();
    waiting[0]!.reject(new CoterieError('UNAVAILABLE', 'the store has no primary'));
    await expect(answer).resolves.toMatchObject({ state: 'pending' });
    await until('the first retry', () => waiting.length === 2, 5_000, 5);
    waiting[1]!.reject(new CoterieError('TRACKER_UNAVAILABLE', 'still none'));
    await until('the second retry', () => waiting.length === 3, 5_000, 5);
    waiting[2]!.resolve({ messageId: 'm1', streamId: 'd:alice:bob', seq: 1, duplicate: false });
    await until('the message sent', () => store.outbox.pending().length === 0, 5_000, 5);
    expect(store.outbox.sent({ limit: 10 }).map((r) => [r.body, r.messageId, r.state])).toEqual([
      ['later', 'm1', 'sent'],
    ]);
    expect(waiting.map((w) => w.via)).toEqual([via, via, via]);
    m.stop();
  });
});
