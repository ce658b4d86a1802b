import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { directStreamId, parseStreamId } from '../../src/protocol/streams.js';
import { createLocalEventBus } from '../../src/tracker/events/index.js';
import type { GroupsService } from '../../src/tracker/services/groups.js';
import { createDirectory } from '../../src/tracker/services/messages/directory.js';
import type { PushPlanner } from '../../src/tracker/services/messages/push.js';
import { createReceiptFanOut } from '../../src/tracker/services/messages/receipts.js';
import { writeMessages } from '../../src/tracker/services/messages/write-messages.js';
import { createWriteQueue } from '../../src/tracker/services/messages/write-queue.js';
import { openStore, type Store } from '../../src/tracker/store/index.js';
import { tempDir } from '../helpers/temp-dir.js';

let store: Store | undefined;
afterEach(async () => {
  await store?.close();
  store = undefined;
});

const nextTurn = () => new Promise((r) => setImmediate(r));

describe('message write queue (SQLite)', () => {
  it('writes an acknowledgement in the commit of the next send, not a commit of its own', async () => {
    store = await openStore({ location: join(tempDir('coterie-write-queue-').path, 'tracker.db') });
    for (const u of ['ann', 'bob'])
      await store.db.insertInto('users').values({ user_id: u, password_hash: 'x', created_at: 1 }).execute();
    const s = store;
    let commits = 0;
    const counted: Store = {
      ...s,
      transaction: async (fn) => {
        const r = await s.transaction(fn);
        commits++;
        return r;
      },
    };
    const bus = createLocalEventBus();
    const receipts = createReceiptFanOut(bus, 'tracker');
    const heard: { reader: string; delivered: number }[] = [];
    receipts.onReceipts((rs) => {
      for (const r of rs) heard.push({ reader: r.reader, delivered: r.delivered });
    });
    const push = { pushLocal: () => {} } as Pick<PushPlanner, 'pushLocal'> as PushPlanner;
    const queue = createWriteQueue({
      store: counted,
      bus,
      now: () => 1,
      trackerId: 'tracker',
      directory: createDirectory(s.db, {} as GroupsService),
      receipts,
      push,
    });
    const streamId = directStreamId('ann', 'bob');
    const send = (n: number) =>
      queue.send({
        sender: 'ann',
        streamId,
        stream: parseStreamId(streamId)!,
        clientId: `c${n}`,
        body: `m${n}`,
      });

    expect((await send(1)).seq).toBe(1);
    expect(commits).toBe(1);
    const acked = new Promise<void>((written) => queue.addCursor(streamId, 'bob', 1, 0, written));
    queue.schedule();
    await nextTurn(); // bob acknowledged while ann's next message is on its way
    expect((await send(2)).seq).toBe(2);
    await acked;
    expect(commits).toBe(2);
    expect(heard).toEqual([{ reader: 'bob', delivered: 1 }]);

    // With nothing sent, the acknowledgement is written on its own, soon.
    const alone = new Promise<void>((written) => queue.addCursor(streamId, 'bob', 2, 2, written));
    queue.schedule();
    await alone;
    expect(commits).toBe(3);
    const row = await s.db.selectFrom('cursors').selectAll().where('user_id', '=', 'bob').executeTakeFirst();
    expect(row).toMatchObject({ delivered_seq: 2, read_seq: 2 });
    await bus.close();
  });
});

/** Counts the SQLite statements run whose text matches `pattern`, until `stop()`. */
function countStatements(pattern: RegExp): { count: () => number; stop: () => void } {
  const d = new Database(':memory:');
  const proto = Object.getPrototypeOf(d.prepare('select 1')) as Record<string, (...a: unknown[]) => unknown>;
  d.close();
  let n = 0;
  const originals = ['all', 'run', 'get'].map((m) => [m, proto[m]!] as const);
  for (const [m, orig] of originals) {
    proto[m] = function (this: { source: string }, ...args: unknown[]) {
      if (pattern.test(this.source)) n++;
      return orig.apply(this, args);
    };
  }
  return {
    count: () => n,
    stop: () => {
      for (const [m, orig] of originals) proto[m] = orig;
    },
  };
}

describe('cursor commits (SQLite)', () => {
  it("reads no cursor position it committed before: the tracker is the store's one writer", async () => {
    store = await openStore({ location: join(tempDir('coterie-cursor-cache-').path, 'tracker.db') });
    for (const u of ['ann', 'bob', 'cat'])
      await store.db.insertInto('users').values({ user_id: u, password_hash: 'x', created_at: 1 }).execute();
    const bus = createLocalEventBus();
    const receipts = createReceiptFanOut(bus, 'tracker');
    const heard: { reader: string; delivered: number; read: number }[] = [];
    receipts.onReceipts((rs) => {
      for (const r of rs) heard.push({ reader: r.reader, delivered: r.delivered, read: r.read });
    });
    const queue = createWriteQueue({
      store,
      bus,
      now: () => 1,
      trackerId: 'tracker',
      directory: createDirectory(store.db, {} as GroupsService),
      receipts,
      push: { pushLocal: () => {} } as Pick<PushPlanner, 'pushLocal'> as PushPlanner,
    });
    const streamId = directStreamId('ann', 'bob');
    for (let n = 1; n <= 3; n++)
      await queue.send({
        sender: 'ann',
        streamId,
        stream: parseStreamId(streamId)!,
        clientId: `c${n}`,
        body: `m${n}`,
      });
    const ack = (delivered: number, read = 0) =>
      new Promise<void>((written) => {
        queue.addCursor(streamId, 'bob', delivered, read, written);
        queue.schedule();
      });
    const reads = countStatements(/^select .* from "cursors"/);
    try {
      await ack(1);
      expect(reads.count()).toBe(1); // bob's position, not known yet
      await ack(2);
      await ack(3, 2);
      await ack(2); // behind: no move, no receipt
      expect(reads.count()).toBe(1);
    } finally {
      reads.stop();
    }
    expect(heard).toEqual([
      { reader: 'bob', delivered: 1, read: 0 },
      { reader: 'bob', delivered: 2, read: 0 },
      { reader: 'bob', delivered: 3, read: 2 },
    ]);
    const row = await store.db
      .selectFrom('cursors')
      .selectAll()
      .where('user_id', '=', 'bob')
      .executeTakeFirst();
    expect(row).toMatchObject({ delivered_seq: 3, read_seq: 2 });
    await bus.close();
  });
});

describe('cursor commits in parts (SQLite)', () => {
  it('commits a burst of acknowledgements in parts, and a send read meanwhile before the rest', async () => {
    store = await openStore({ location: join(tempDir('coterie-cursor-parts-').path, 'tracker.db') });
    const members = Array.from({ length: 600 }, (_, i) => `u${i}`);
    for (const u of ['ann', ...members])
      await store.db.insertInto('users').values({ user_id: u, password_hash: 'x', created_at: 1 }).execute();
    const s = store;
    const log: string[] = [];
    const counted: Store = {
      ...s,
      transaction: async (fn) => {
        const r = await s.transaction(fn);
        log.push('commit');
        return r;
      },
    };
    const bus = createLocalEventBus();
    const queue = createWriteQueue({
      store: counted,
      bus,
      now: () => 1,
      trackerId: 'tracker',
      directory: createDirectory(s.db, {} as GroupsService),
      receipts: createReceiptFanOut(bus, 'tracker'),
      push: { pushLocal: () => {} } as Pick<PushPlanner, 'pushLocal'> as PushPlanner,
    });
    const send = (to: string, n: number) => {
      const streamId = directStreamId('ann', to);
      return queue.send({
        sender: 'ann',
        streamId,
        stream: parseStreamId(streamId)!,
        clientId: `c${n}`,
        body: 'x',
      });
    };
    await Promise.all(members.map((u, i) => send(u, i)));
    log.length = 0;
    // Every member acknowledges at once; the sender's next message is read in the next turn.
    const acked = members.map(
      (u) => new Promise<void>((written) => queue.addCursor(directStreamId('ann', u), u, 1, 0, written)),
    );
    queue.schedule();
    const sent = new Promise<void>((resolve) =>
      setImmediate(() => void send('u0', 1000).then(() => resolve(void log.push('sent')))),
    );
    await Promise.all([...acked, sent]);
    // 600 cursor moves in parts of at most 256, the send between two of them, not after all.
    expect(log.filter((e) => e === 'commit').length).toBeGreaterThanOrEqual(4);
    expect(log.slice(log.indexOf('sent'))).toContain('commit');
    const rows = await s.db.selectFrom('cursors').select('user_id').where('delivered_seq', '=', 1).execute();
    expect(rows.length).toBe(600);
    await bus.close();
  });
});

describe('writeMessages (SQLite)', () => {
  it('stores a batch larger than one INSERT in order, each retried send once', async () => {
    store = await openStore({ location: join(tempDir('coterie-write-messages-').path, 'tracker.db') });
    for (const u of ['ann', 'bob'])
      await store.db.insertInto('users').values({ user_id: u, password_hash: 'x', created_at: 1 }).execute();
    const directory = createDirectory(store.db, {} as GroupsService);
    const streamId = directStreamId('ann', 'bob');
    const stream = parseStreamId(streamId)!;
    const send = (n: number) => ({ sender: 'ann', streamId, stream, clientId: `c${n}`, body: `m${n}` });
    const first = await store.transaction((trx) => writeMessages(trx, directory, [send(0)], 1));
    // 300 rows take several INSERTs (256 + 32 + 8 + 4); c0 was stored before, c5 comes twice.
    const batch = [send(0), ...Array.from({ length: 300 }, (_, i) => send(i + 1)), send(5)];
    const { results, stored } = await store.transaction((trx) => writeMessages(trx, directory, batch, 2));
    expect(results[0]).toEqual({ ...first.results[0], duplicate: true });
    expect(results.slice(1, 301).map((r) => [r.seq, r.duplicate])).toEqual(
      Array.from({ length: 300 }, (_, i) => [i + 2, false]),
    );
    expect(results[301]).toEqual({ ...results[5], duplicate: true });
    expect(stored.map((m) => m.body)).toEqual(Array.from({ length: 300 }, (_, i) => `m${i + 1}`));
    const rows = await store.db
      .selectFrom('messages')
      .select(['seq', 'body', 'client_id', 'message_id'])
      .where('stream_id', '=', streamId)
      .orderBy('seq')
      .execute();
    expect(rows.map((r) => [Number(r.seq), r.body, r.client_id])).toEqual(
      Array.from({ length: 301 }, (_, i) => [i + 1, `m${i}`, `c${i}`]),
    );
    expect(rows[5]!.message_id).toBe(results[5]!.messageId);
  });
});
