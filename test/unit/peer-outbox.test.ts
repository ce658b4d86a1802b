import { EventEmitter } from 'node:events';
import pino from 'pino';
import { beforeEach, describe, expect, it } from 'vitest';
import { createMessagingService } from '../../src/peer/messages/messaging.js';
import { PeerStore } from '../../src/peer/store/index.js';
import type { TrackerHttpClient } from '../../src/peer/tracker/http-client.js';
import type { TrackerSession } from '../../src/peer/tracker/session.js';
import { CoterieError } from '../../src/protocol/errors.js';
import { tempDir } from '../helpers/temp-dir.js';

// The outbox keeps a message until a tracker that heard it answers: a call cut off (the
// tracker lost mid-call, the daemon stopping) leaves it pending, and a stopping daemon never
// touches its store after close (an unhandled rejection there crashed daemons in the chaos run).

let dir: string;
let store: PeerStore;
beforeEach(() => {
  dir = tempDir('coterie-outbox-').path;
  store = new PeerStore(dir);
});

/** A tracker client whose calls end the way the test says, when it says. */
function trackerCalls() {
  const waiting: { resolve: (v: unknown) => void; reject: (e: unknown) => void }[] = [];
  const http = {
    call: () => new Promise((resolve, reject) => waiting.push({ resolve, reject })),
  } as unknown as TrackerHttpClient;
  return { http, waiting };
}

function messaging(http: TrackerHttpClient) {
  const session = Object.assign(new EventEmitter(), { state: 'connected', send: () => {} });
  return createMessagingService({
    store,
    http,
    session: session as unknown as TrackerSession,
    userId: () => 'alice',
    notify: () => {},
    log: pino({ level: 'silent' }),
  });
}

const settle = () => new Promise((r) => setImmediate(r));

describe('the outbox', () => {
  it('keeps a send whose call was cut off (not a tracker refusal) pending', async () => {
    const { http, waiting } = trackerCalls();
    const m = messaging(http);
    const answer = m.sendMessage({ to: 'bob' }, 'hello');
    await settle();
    waiting[0]!.reject(new Error('tracker lost'));
    await expect(answer).resolves.toMatchObject({ state: 'pending' });
    expect(store.outbox.pending().map((r) => r.body)).toEqual(['hello']);
  });

  it('drops a send the tracker refused, with its error', async () => {
    const { http, waiting } = trackerCalls();
    const m = messaging(http);
    const answer = m.sendMessage({ to: 'nobody' }, 'hello');
    await settle();
    waiting[0]!.reject(new CoterieError('USER_NOT_FOUND', 'no such user'));
    await expect(answer).rejects.toMatchObject({ code: 'USER_NOT_FOUND' });
    expect(store.outbox.pending()).toEqual([]);
  });

  it('a resend under way when the daemon stops leaves the closed store alone', async () => {
    const { http, waiting } = trackerCalls();
    const m = messaging(http);
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
});
