// Messages across trackers: a message sent through tracker A is pushed at once
// to a recipient connected to tracker B (messages_stored events on the bus,
// B reads the rows), and receipts travel back to the sender's session on A.
import pg from 'pg';
import { expect, it } from 'vitest';
import { directStreamId, newTimeOrderedId } from '../../src/protocol/streams.js';
import { until } from '../helpers/cli-harness.js';
import { client, type SessionClient } from '../helpers/tracker.js';
import { describeWithPg } from './pg.js';
import { receivePushed, syncedSessions } from './sessions.js';

type Pushed = { messageId: string; streamId: string; seq: number; sender: string; body: string };

describeWithPg(
  'messages across two trackers on one PostgreSQL',
  // Quick cluster beats: a dead tracker drops out of the others' list within two seconds.
  { prefix: 'coterie-xmsg-', flags: ['--cluster-heartbeat-ms', '250', '--cluster-dead-after-ms', '1500'] },
  (cluster) => {
    const { trackers } = cluster;
    const connect = syncedSessions();
    const receive = (s: SessionClient, count: number) => receivePushed<Pushed>(s, count);

    it('pushes direct, group and topic messages sent through A to a session on B, in order', async () => {
      const a = client(trackers[0]!.url);
      const b = client(trackers[1]!.url);
      const alice = await a.user('xm-alice');
      const bob = await b.user('xm-bob');
      await a.call('POST', '/v1/groups', { token: alice, body: { groupId: 'xmg' } });
      await b.call('POST', '/v1/groups/xmg/join', { token: bob });
      await a.call('POST', '/v1/groups/xmg/requests/xm-bob/accept', { token: alice });
      await a.call('POST', '/v1/groups/xmg/topics', { token: alice, body: { topic: 'news' } });
      // Bob subscribes through B, alice publishes through A.
      await b.call('POST', '/v1/groups/xmg/topics/news/subscribe', { token: bob });

      const bobOnB = await connect(trackers[1]!.url, bob);
      const aliceOnA = await connect(trackers[0]!.url, alice);
      const sends = [
        { to: 'xm-bob', body: 'd1' },
        { groupId: 'xmg', body: 'g1' },
        { groupId: 'xmg', topic: 'news', body: 't1' },
        { to: 'xm-bob', body: 'd2' },
        { groupId: 'xmg', body: 'g2' },
        { groupId: 'xmg', topic: 'news', body: 't2' },
      ];
      sends.forEach((m, i) => {
        aliceOnA.raw({ type: 'send', id: i, clientId: `c${i}`, ...m });
      });
      for (let i = 0; i < sends.length; i++) await aliceOnA.next(['sent', 'error']);
      const got = await receive(bobOnB, sends.length);
      expect(got.map((m) => m.body).sort()).toEqual(sends.map((m) => m.body).sort());
      expect(new Set(got.map((m) => m.messageId)).size).toBe(got.length);
      // In order within each stream.
      const byStream = new Map<string, string[]>();
      for (const m of got) byStream.set(m.streamId, [...(byStream.get(m.streamId) ?? []), m.body]);
      expect([...byStream.values()].map((l) => l.join(',')).sort()).toEqual(['d1,d2', 'g1,g2', 't1,t2']);

      // Receipts: bob (on B) acknowledges and reads the direct messages; alice (on A) hears of it.
      const direct = got.filter((m) => m.body.startsWith('d'));
      const last = direct[direct.length - 1]!;
      bobOnB.raw({
        type: 'ack_messages',
        id: 'r1',
        cursors: [{ streamId: last.streamId, delivered: last.seq }],
      });
      expect(await aliceOnA.next('receipt')).toMatchObject({
        streamId: last.streamId,
        reader: 'xm-bob',
        delivered: last.seq,
      });
      bobOnB.raw({ type: 'ack_messages', id: 'r2', cursors: [{ streamId: last.streamId, read: last.seq }] });
      expect(await aliceOnA.next('receipt')).toMatchObject({
        streamId: last.streamId,
        reader: 'xm-bob',
        read: last.seq,
      });
    });

    it('keeps one stream in order when both trackers write to it, without duplicates', async () => {
      const a = client(trackers[0]!.url);
      const carol = await a.user('xm-carol');
      const dave = await a.user('xm-dave');
      const erin = await a.user('xm-erin');
      await a.call('POST', '/v1/groups', { token: carol, body: { groupId: 'xmh' } });
      for (const [name, token] of [
        ['xm-dave', dave],
        ['xm-erin', erin],
      ] as const) {
        await a.call('POST', '/v1/groups/xmh/join', { token });
        await a.call('POST', `/v1/groups/xmh/requests/${name}/accept`, { token: carol });
      }
      const erinOnB = await connect(trackers[1]!.url, erin);
      const carolOnA = await connect(trackers[0]!.url, carol);
      const daveOnB = await connect(trackers[1]!.url, dave);
      const n = 40;
      for (let i = 0; i < n; i++) {
        const [s, who] = i % 2 === 0 ? [carolOnA, 'c'] : [daveOnB, 'd'];
        s.raw({ type: 'send', id: i, clientId: `h${i}`, groupId: 'xmh', body: `${who}${i}` });
      }
      const got = await receive(erinOnB, n);
      expect(got.length).toBe(n);
      expect(got.map((m) => m.seq)).toEqual([...got.map((m) => m.seq)].sort((x, y) => x - y));
      expect(new Set(got.map((m) => m.messageId)).size).toBe(n);
    });

    /**
     * Stores a message as a tracker would and then dies before its NOTIFY: the
     * row is committed, no tracker hears of it.
     */
    const commitUnannounced = async (streamId: string, sender: string, body: string) => {
      const c = new pg.Client({ connectionString: cluster.db.url });
      await c.connect();
      try {
        await c.query('BEGIN');
        const at = Date.now();
        await c.query(
          `INSERT INTO streams (stream_id, kind, group_id, topic, last_seq, retention_count, retention_ms, created_by, created_at)
           VALUES ($1, 'direct', NULL, NULL, 0, NULL, NULL, $2, $3) ON CONFLICT (stream_id) DO NOTHING`,
          [streamId, sender, at],
        );
        for (const u of streamId.split(':').slice(1)) {
          await c.query(
            `INSERT INTO cursors (stream_id, user_id, delivered_seq, read_seq) VALUES ($1, $2, 0, 0)
             ON CONFLICT (stream_id, user_id) DO NOTHING`,
            [streamId, u],
          );
        }
        const { rows } = await c.query<{ last_seq: string }>(
          'UPDATE streams SET last_seq = last_seq + 1 WHERE stream_id = $1 RETURNING last_seq',
          [streamId],
        );
        await c.query(
          'INSERT INTO messages (stream_id, seq, message_id, sender, client_id, body, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)',
          [streamId, rows[0]!.last_seq, newTimeOrderedId(at), sender, `lost-${body}`, body, at],
        );
        await c.query('COMMIT');
      } finally {
        await c.end();
      }
    };

    for (const via of ['the other tracker', 'the same tracker'] as const) {
      it(`pushes what a dead tracker committed unannounced before a stream's first push (next send through ${via})`, async () => {
        // The receiving tracker B has never pushed this stream: its first push must start from
        // what its sessions lack (their cursors), not from the event's range.
        const tag = via === 'the same tracker' ? 'fs1' : 'fs2';
        const a = client(trackers[0]!.url);
        const b = client(trackers[1]!.url);
        const frank = await a.user(`${tag}-frank`);
        const gina = await a.user(`${tag}-gina`);
        const ginaOnB = await connect(trackers[1]!.url, gina);
        const streamId = directStreamId(`${tag}-frank`, `${tag}-gina`);
        await commitUnannounced(streamId, `${tag}-frank`, 'u1');
        const api = via === 'the same tracker' ? b : a;
        await api.call('POST', '/v1/messages', {
          token: frank,
          body: { to: `${tag}-gina`, clientId: `${tag}-c2`, body: 'u2' },
        });
        const got = await receive(ginaOnB, 2);
        expect(got.map((m) => [m.seq, m.body])).toEqual([
          [1, 'u1'],
          [2, 'u2'],
        ]);
      });
    }

    it('pushes what was sent while its event listener was down, once it listens again', async () => {
      const a = client(trackers[0]!.url);
      const hank = await a.user('ll-hank');
      const ivy = await a.user('ll-ivy');
      const ivyOnB = await connect(trackers[1]!.url, ivy);
      const send = (body: string) =>
        a.call('POST', '/v1/messages', { token: hank, body: { to: 'll-ivy', clientId: body, body } });
      await send('l1');
      expect((await receive(ivyOnB, 1)).map((m) => m.body)).toEqual(['l1']);

      // Cut every tracker's listening connection; while they reconnect, send through A.
      const admin = new pg.Client({ connectionString: cluster.db.url });
      await admin.connect();
      try {
        const cut = await admin.query<{ pid: number }>(
          `SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity
           WHERE datname = current_database() AND application_name LIKE 'coterie-listen-%'`,
        );
        expect(cut.rowCount).toBeGreaterThanOrEqual(2);
        // Gone (the trackers connect again at once: those new connections are not waited for).
        const pids = cut.rows.map((r) => r.pid);
        await until(
          'listeners gone',
          async () =>
            (await admin.query('SELECT 1 FROM pg_stat_activity WHERE pid = ANY($1)', [pids])).rowCount === 0,
          5_000,
        );
      } finally {
        await admin.end();
      }
      await send('l2');
      // No later message of the stream comes to fill the gap: B pushes l2 after listening again.
      // Its catch-up on listening again may come first and send l1 again (the peer drops it).
      const got: string[] = [];
      const end = Date.now() + 10_000;
      while (!got.includes('l2') && Date.now() < end) {
        const m = (await ivyOnB.next('messages', end - Date.now())) as unknown as { items: Pushed[] };
        got.push(...m.items.map((i) => i.body));
      }
      expect(got).toContain('l2');
      expect(got.filter((b) => b !== 'l1')).toEqual(['l2']);
    });

    it('pushes what a tracker committed and died before announcing, once it drops out of the cluster', async () => {
      const c = await cluster.startTracker(2);
      const a = client(trackers[0]!.url);
      await a.user('dd-jack');
      const kim = await a.user('dd-kim');
      const kimOnB = await connect(trackers[1]!.url, kim);
      await until('B sees C', async () => {
        const r = await client(trackers[1]!.url).call<{ trackers: { url: string }[] }>('GET', '/v1/cluster');
        return r.body.trackers.some((t) => t.url === c.url);
      });
      // C stores a message and is killed before its NOTIFY; no later message of the stream follows.
      await commitUnannounced(directStreamId('dd-jack', 'dd-kim'), 'dd-jack', 'k1');
      await c.stop('SIGKILL');
      const got = (await kimOnB.next('messages', 8_000)) as unknown as { items: Pushed[] };
      expect(got.items.map((m) => m.body)).toEqual(['k1']);
    });

    it('pushes what a tracker committed and died before announcing, when it comes back at once', async () => {
      // Restarted within the cluster's dead-after time it never drops out of the list: its new
      // start time tells the others that the old one died.
      let c = await cluster.startTracker(3);
      const a = client(trackers[0]!.url);
      await a.user('dr-lou');
      const max = await a.user('dr-max');
      const maxOnB = await connect(trackers[1]!.url, max);
      await until('B sees C', async () => {
        const r = await client(trackers[1]!.url).call<{ trackers: { url: string }[] }>('GET', '/v1/cluster');
        return r.body.trackers.some((t) => t.url === c.url);
      });
      await commitUnannounced(directStreamId('dr-lou', 'dr-max'), 'dr-lou', 'r1');
      await c.stop('SIGKILL');
      c = await cluster.startTracker(3, ['--port', String(c.port)]);
      const got = (await maxOnB.next('messages', 8_000)) as unknown as { items: Pushed[] };
      expect(got.items.map((m) => m.body)).toEqual(['r1']);
    });

    it('pushes what a tracker killed between its commit and its announcement stored, with no later message', async () => {
      // A real tracker's send path: C commits the batch, then its fault hook SIGKILLs it before
      // the messages_stored event leaves (the bus announces after the commit, not in it). No later
      // message of the stream follows: B gets it only by catching up when C drops out.
      const c = await cluster.startTracker(4, [], { env: { COTERIE_FAULT_DIE_BEFORE_ANNOUNCE: '1' } });
      const a = client(trackers[0]!.url);
      const nora = await a.user('fk-nora');
      const otto = await a.user('fk-otto');
      const ottoOnB = await connect(trackers[1]!.url, otto);
      await a.call('POST', '/v1/messages', {
        token: nora,
        body: { to: 'fk-otto', clientId: 'f1', body: 'f1' },
      });
      expect((await receive(ottoOnB, 1)).map((m) => m.body)).toEqual(['f1']);
      await until('B sees C', async () => {
        const r = await client(trackers[1]!.url).call<{ trackers: { url: string }[] }>('GET', '/v1/cluster');
        return r.body.trackers.some((t) => t.url === c.url);
      });
      const exited = new Promise<NodeJS.Signals | null>((resolve) =>
        c.proc.once('exit', (_, signal) => resolve(signal)),
      );
      const answered = client(c.url)
        .call('POST', '/v1/messages', { token: nora, body: { to: 'fk-otto', clientId: 'f2', body: 'f2' } })
        .then(
          () => true,
          () => false,
        );
      expect(await exited).toBe('SIGKILL');
      expect(await answered).toBe(false);
      const got = (await ottoOnB.next('messages', 8_000)) as unknown as { items: Pushed[] };
      // The catch-up sends from Otto's delivered cursor: f1 again if his peer has not acknowledged it.
      expect(got.items.map((m) => m.body).filter((b) => b !== 'f1')).toEqual(['f2']);
      expect(got.items.find((m) => m.body === 'f2')?.seq).toBe(2);
    });

    it('pushes what a tracker could not announce at first, with no later message', async () => {
      // A tracker that stays up, whose first announcement's NOTIFY fails a whole round of tries
      // (fault hook, read in pg-bus.ts): the bus keeps the range and sends it again. Nothing else
      // would tell B: no later message on the stream, and no tracker leaves the cluster.
      const d = await cluster.startTracker(5, [], { env: { COTERIE_FAULT_REFUSE_ANNOUNCE: '3' } });
      const a = client(trackers[0]!.url);
      const ria = await a.user('rn-ria');
      const sol = await a.user('rn-sol');
      const solOnB = await connect(trackers[1]!.url, sol);
      await client(d.url).call('POST', '/v1/messages', {
        token: ria,
        body: { to: 'rn-sol', clientId: 'r1', body: 'r1' },
      });
      const got = (await solOnB.next('messages', 8_000)) as unknown as { items: Pushed[] };
      expect(got.items.map((m) => m.body)).toEqual(['r1']);
    });

    it('pushes a topic to who subscribed through another tracker', async () => {
      const a = client(trackers[0]!.url);
      const b = client(trackers[1]!.url);
      const lee = await a.user('sc-lee');
      const mia = await a.user('sc-mia');
      await a.call('POST', '/v1/groups', { token: lee, body: { groupId: 'scg' } });
      await a.call('POST', '/v1/groups/scg/join', { token: mia });
      await a.call('POST', '/v1/groups/scg/requests/sc-mia/accept', { token: lee });
      await a.call('POST', '/v1/groups/scg/topics', { token: lee, body: { topic: 'news' } });
      const publish = (body: string) =>
        b.call('POST', '/v1/groups/scg/topics/news/messages', { token: lee, body: { clientId: body, body } });
      await publish('p0'); // B now knows the topic's subscribers: none
      const miaOnB = await connect(trackers[1]!.url, mia);
      await a.call('POST', '/v1/groups/scg/topics/news/subscribe', { token: mia });
      // A's events reach B in order: once B pushed this, it heard of the subscription too.
      await a.call('POST', '/v1/messages', {
        token: lee,
        body: { to: 'sc-mia', clientId: 'mark', body: 'mark' },
      });
      expect((await receive(miaOnB, 1)).map((m) => m.body)).toEqual(['mark']);
      await publish('p1');
      expect((await receive(miaOnB, 1)).map((m) => m.body)).toEqual(['p1']);
    });
  },
);
