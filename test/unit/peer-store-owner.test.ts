import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { type InboxMessage, PeerStore } from '../../src/peer/store/index.js';
import { peerDbAt } from '../helpers/peer-db.js';
import { tempDir } from '../helpers/temp-dir.js';
import { thrownCode } from '../helpers/wait.js';

/** A scratch data directory, removed when the test finishes. */
const scratch = () => tempDir('coterie-store-').path;

const msg = (
  id: string,
  streamId: string,
  seq: number,
  body: string,
): Omit<InboxMessage, 'receivedAt' | 'readAt'> => ({
  messageId: id.padEnd(32, '0'),
  streamId,
  seq,
  kind: 'group',
  sender: 'carol',
  to: null,
  groupId: 'films',
  topic: null,
  body,
  sentAt: 1000 + seq,
});

describe('peer store: messages belong to the logged-in user', () => {
  it('keeps two users of one data directory apart (inbox, cursors, outbox, receipts)', () => {
    const store = new PeerStore(scratch());
    try {
      store.setSession({ userId: 'alice', token: 't-a' });
      // the same group message reaches both users: each gets their own copy
      expect(store.inbox.add([msg('a1', 'g:films', 1, 'for the group')], 1)).toHaveLength(1);
      store.inbox.add([msg('a2', 'g:films', 2, 'alice only sees this')], 2);
      store.outbox.put({
        messageId: null,
        clientId: 'c1',
        streamId: 'd:alice:bob',
        seq: null,
        to: 'bob',
        groupId: null,
        topic: null,
        body: 'pending from alice',
        state: 'pending',
        createdAt: 1,
      });
      expect(store.outbox.putReceipt('g:films', 'bob', 2, 1)).toBe(true);

      store.setSession(undefined);
      store.setSession({ userId: 'bob', token: 't-b' });
      expect(store.inbox.list({ unread: false, limit: 100 })).toEqual([]);
      expect(store.inbox.cursors()).toEqual([]);
      expect(store.outbox.pending()).toEqual([]);
      expect(store.inbox.add([msg('a1', 'g:films', 1, 'for the group')], 3)).toHaveLength(1);
      store.inbox.markRead(['a1'.padEnd(32, '0')], 4);
      expect(store.outbox.putReceipt('g:films', 'bob', 2, 1)).toBe(true);
      expect(store.inbox.list({ unread: false, limit: 100 }).map((m) => m.body)).toEqual(['for the group']);

      store.setSession({ userId: 'alice', token: 't-a2' });
      const mine = store.inbox.list({ unread: true, limit: 100 });
      expect(mine.map((m) => m.body)).toEqual(['for the group', 'alice only sees this']);
      expect(store.inbox.cursors()).toEqual([{ streamId: 'g:films', delivered: 2, read: 0 }]);
      expect(store.outbox.pending().map((r) => r.body)).toEqual(['pending from alice']);
    } finally {
      store.close();
    }
  });

  it('gives the rows of a schema-2 store to the user of its saved session', () => {
    const dir = scratch();
    // A peer.db as written by schema 2 (before owners existed).
    peerDbAt(dir, 2, (db) =>
      db.exec(`INSERT INTO meta VALUES ('session', '{"userId":"dave","token":"t"}');
        INSERT INTO inbox VALUES ('${'b'.repeat(32)}', 'd:carol:dave', 1, 'direct', 'carol', 'dave', NULL, NULL,
          'kept across the upgrade', 5, 6, NULL);`),
    );
    const store = new PeerStore(dir);
    try {
      expect(store.inbox.list({ unread: false, limit: 10 }).map((m) => m.body)).toEqual([
        'kept across the upgrade',
      ]);
      store.setSession({ userId: 'erin', token: 'u' });
      expect(store.inbox.list({ unread: false, limit: 10 })).toEqual([]);
    } finally {
      store.close();
    }
  });
});

describe('peer store: a damaged peer.db', () => {
  it('is refused with PATH_INVALID and what to do, not a bare SQLite error', () => {
    const dir = scratch();
    writeFileSync(join(dir, 'peer.db'), 'not a database, really not a database at all');
    expect(thrownCode(() => new PeerStore(dir))).toBe('PATH_INVALID');
    expect(() => new PeerStore(dir)).toThrow(/peer\.db.*move it away/);
  });

  it('refuses a peer.db from a newer coterie and leaves it as it was', () => {
    const dir = scratch();
    new PeerStore(dir).close();
    const db = new Database(join(dir, 'peer.db'));
    db.pragma('user_version = 999');
    db.close();
    expect(() => new PeerStore(dir)).toThrow(/schema 999, newer/);
    const again = new Database(join(dir, 'peer.db'));
    expect(again.pragma('user_version', { simple: true })).toBe(999);
    again.close();
  });
});
