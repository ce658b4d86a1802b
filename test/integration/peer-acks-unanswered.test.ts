import { afterEach, describe, expect, it } from 'vitest';
import type { ClientOptions } from 'ws';
import { pinnedConnection } from '../../bench/lib/tracker-pins.js';
import { createMessagingService, type MessagingService } from '../../src/peer/messages/messaging.js';
import { PeerStore } from '../../src/peer/store/index.js';
import type { TrackerHttpClient } from '../../src/peer/tracker/http-client.js';
import { TrackerPool } from '../../src/peer/tracker/pool.js';
import { TrackerSession } from '../../src/peer/tracker/session.js';
import { randomPeerId, SessionClient, tempDir, trackerPerFile, userToken } from '../helpers/tracker.js';
import { until } from '../helpers/wait.js';

// The peer daemon acknowledges what it stored (ack_messages) without an id: the tracker moves its
// cursor and tells the sender (receipts), and writes no `ack` answer back. A group of 1,000
// members at 50 messages a second sent the tracker up to 10,000 acknowledgements a second, each
// answered by a frame nobody waited for. Real tracker, the daemon's own session and messaging
// service.

describe('peer: acknowledgements of delivered messages', () => {
  const t = trackerPerFile();
  let store: PeerStore | undefined;
  let session: TrackerSession | undefined;
  let messaging: MessagingService | undefined;
  afterEach(() => {
    messaging?.stop();
    session?.stop();
    store?.close();
  });

  it('are sent unanswered, and still move the cursor: the sender gets its delivered receipts', async () => {
    const base = t.tracker.url;
    const [st, rt] = await Promise.all([userToken(base, 'unans-sender'), userToken(base, 'unans-reader')]);
    const frames = new Map<string, number>();
    store = new PeerStore(tempDir('coterie-acks-unanswered-').path);
    const s = new TrackerSession({
      pool: new TrackerPool([base]),
      getToken: () => rt,
      registration: () => ({ peerId: randomPeerId(), addresses: [], seeding: [], watching: [] }),
      trust: { webSocketOptions: () => pinnedConnection(base) as ClientOptions },
      observeFrame: (type) => frames.set(type, (frames.get(type) ?? 0) + 1),
    });
    session = s;
    const m = createMessagingService({
      store,
      http: {} as TrackerHttpClient,
      session: s,
      userId: () => 'unans-reader',
      notify: () => {},
      deliveryAckWindowMs: 20,
    });
    messaging = m;
    s.on('messaging', (e) => m.onSessionMessaging(e));
    s.start();
    await until('the reader is connected', () => s.state === 'connected', 10_000);
    const sender = await SessionClient.connect(base, 'unans-sender', st);
    try {
      const acksBefore = frames.get('ack') ?? 0;
      const SENDS = 20;
      let last = 0;
      for (let i = 0; i < SENDS; i++) last = (await sender.send({ to: 'unans-reader' }, `u${i}`)).seq;
      await until('the sender hears every message was delivered', () =>
        sender.receipts.some((r) => r.reader === 'unans-reader' && r.delivered >= last),
      );
      expect(store.inbox.count({ unread: false })).toBe(SENDS);
      // Acknowledgements went (the receipts say so), and none was answered.
      expect(frames.get('ack') ?? 0).toBe(acksBefore);
    } finally {
      await sender.close();
    }
  });
});
