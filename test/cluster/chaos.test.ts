// Chaos: three trackers on one PostgreSQL, twenty peers writing without pause
// (groups, direct, group and topic messages) and two downloads running, while
// a tracker is SIGKILLed every few seconds and restarted (and between kills,
// another tracker's LISTEN connection is cut). At the end: every
// accepted write is there exactly once, every accepted message reached every
// recipient exactly once and in order, both downloads are byte-identical,
// every peer is connected again.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, expect, it } from 'vitest';
import { type PeerDaemon, startPeerDaemon } from '../../src/peer/daemon.js';
import { CoterieError } from '../../src/protocol/errors.js';
import { randomFile, until } from '../helpers/cli-harness.js';
import { suiteTempDir } from '../helpers/temp-dir.js';
import { client, spawnTracker, type TrackerProcess } from '../helpers/tracker.js';
import { MessageLedger } from './message-ledger.js';
import { createTestDatabase, pgTestUrl, reportSkipped, sharedKeyFile, type TestDatabase } from './pg.js';

const PEERS = 20;
// Kills counted, not a wall-clock window: on a loaded machine a restart takes longer, and a
// window then held fewer kills than the test promises (it failed at 7 of 8 under load 17).
const CHAOS_KILLS = 10;
const KILL_EVERY_MS = 3_000;
const DOWN_FOR_MS = 1_000;
// How long a restarted tracker may take to listen. A start costs ~1.4 s of CPU (module loading,
// fastify compiling every route's validator and serializer) and waits on no lock or timer (the
// migrations find nothing to do; the key file unwraps without scrypt): amid this test's own load
// (20 peers writing, the other trackers, PostgreSQL) on a machine at load 15, it gets a tenth of
// a core and needed over the launcher's 15 s. What the test needs is each restart back before
// that tracker is killed again (the loop awaits it) and all of them before the checks, inside its
// 150 s: a stuck start still fails here, a starved one is waited for.
const RESTART_MS = 60_000;
const FILE_BYTES = 6 * 1024 * 1024;
const UPLOAD_LIMIT = 400 * 1024;
/** Pause between one peer's writes: 20 peers × ~5 writes/s, a quarter each of groups, direct, group and topic messages. */
const WRITE_PAUSE_MS = 150;
/** Topic subscribers: every third peer. */
const isSubscriber = (i: number) => i % 3 === 0;
const TRACKER_FLAGS = [
  '--cluster-heartbeat-ms',
  '250',
  '--cluster-dead-after-ms',
  '1500',
  '--presence-grace-ms',
  '4000',
  '--heartbeat-interval-ms',
  '500',
  '--heartbeat-timeout-ms',
  '500',
];

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

if (pgTestUrl() === undefined) {
  reportSkipped('the cluster chaos test');
  it.skip('cluster chaos (needs COTERIE_TEST_PG_URL)', () => {});
} else {
  const root = suiteTempDir('coterie-chaos-').path;
  let db: TestDatabase | undefined;
  const trackers: (TrackerProcess | undefined)[] = [];
  const ports: number[] = [];
  const peers: PeerDaemon[] = [];

  afterAll(async () => {
    await Promise.allSettled(peers.map((p) => p.stop()));
    for (const t of trackers) await t?.stop('SIGKILL');
    await db?.drop();
  }, 60_000);

  const startTrackerAt = async (i: number) => {
    const t = await spawnTracker(
      join(root, `t${i}`),
      [
        '--store',
        db!.url,
        ...sharedKeyFile(root),
        ...(ports[i] === undefined ? [] : ['--port', String(ports[i])]),
        ...TRACKER_FLAGS,
      ],
      { startMs: RESTART_MS },
    );
    ports[i] = t.port;
    trackers[i] = t;
  };

  it('loses no accepted write, duplicates none, completes downloads and reconnects every peer', async () => {
    db = await createTestDatabase();
    await Promise.all([0, 1, 2].map(startTrackerAt));
    const urls = trackers.map((t) => t!.url);

    // Accounts and the download group, through the API (quick).
    const api = client(urls[0]!);
    const names = Array.from({ length: PEERS }, (_, i) => `p${i}`);
    for (const n of names)
      await api.call('POST', '/v1/users', { body: { userId: n, password: `pw-${n}-secret` } });
    for (const [i, n] of names.entries()) {
      const p = await startPeerDaemon({
        dataDir: join(root, 'peers', n),
        trackers: urls,
        pool: { backoffMs: [0, 50, 100, 200, 400], jitter: 0.2 },
        heartbeatIntervalMs: 500,
        heartbeatTimeoutMs: 500,
        ...(i < 2 ? { uploadLimitBytesPerSec: UPLOAD_LIMIT } : {}),
      });
      peers.push(p);
      await p.execute('login', [n, `pw-${n}-secret`]);
    }
    const connected = async (p: PeerDaemon) =>
      ((await p.execute('status', [])) as { tracker: string | null }).tracker !== null;
    for (const p of peers) await until('peer connected', () => connected(p), 20_000);

    // Two seeders (upload-capped so the downloads last through the chaos), two downloaders.
    await peers[0]!.execute('create_group', ['dl']);
    for (const i of [1, 2, 3]) {
      await peers[i]!.execute('join_group', ['dl']);
      await peers[0]!.execute('accept_request', ['dl', `p${i}`]);
    }
    const files = [join(root, 'src', 'one.bin'), join(root, 'src', 'two.bin')];
    await randomFile(files[0]!, FILE_BYTES);
    await randomFile(files[1]!, FILE_BYTES + 12345);
    await peers[0]!.execute('upload_file', [files[0]!, 'dl']);
    await peers[1]!.execute('upload_file', [files[1]!, 'dl']);
    mkdirSync(join(root, 'dst'));
    const dests = [join(root, 'dst', 'one.bin'), join(root, 'dst', 'two.bin')];
    const downloads = [
      peers[2]!.execute('download_file', ['dl', 'one.bin', dests[0]!, '--wait']),
      peers[3]!.execute('download_file', ['dl', 'two.bin', dests[1]!, '--wait']),
    ];
    for (const d of downloads) d.catch(() => {});

    // The chat group (every peer a member), its topic (every third peer subscribed), and a
    // ledger of what every peer stores from now on.
    await peers[0]!.execute('create_group', ['chat']);
    await Promise.all(peers.slice(1).map((p) => p.execute('join_group', ['chat'])));
    for (const n of names.slice(1)) await peers[0]!.execute('accept_request', ['chat', n]);
    await peers[0]!.execute('create_topic', ['chat', 'news']);
    await Promise.all(
      peers.filter((_, i) => isSubscriber(i)).map((p) => p.execute('subscribe', ['chat', 'news'])),
    );
    const ledger = new MessageLedger();
    /** Sessions each peer lost, to tell a stalled delivery (a peer reconnecting in a loop) from a lost message. */
    const sessionsLost = new Map<string, number>();
    for (const [i, p] of peers.entries()) {
      p.on('event', (e) => {
        if (e.type === 'messageReceived') ledger.delivered(`p${i}`, e.message);
        else if (e.type === 'trackerLost') sessionsLost.set(`p${i}`, (sessionsLost.get(`p${i}`) ?? 0) + 1);
      });
    }
    const subscribers = names.filter((_, i) => isSubscriber(i));

    // Writers: every peer, in turn, creates a group, sends a direct message to the next peer, a
    // message to the chat group and one to its topic. A create whose answer was lost is sent
    // again by the client with the same idempotency key; a message, with the same client id.
    const accepted = new Map<string, string>();
    const refusedAsExisting: string[] = [];
    const failed: string[] = [];
    const failedMessages: string[] = [];
    let stopWriting = false;
    const createGroup = async (i: number, g: string) => {
      try {
        await peers[i]!.execute('create_group', [g]);
        accepted.set(g, `p${i}`);
      } catch (err) {
        if (err instanceof CoterieError && err.code === 'GROUP_EXISTS') refusedAsExisting.push(g);
        else failed.push(`${g}: ${(err as Error).message}`);
      }
    };
    const sendMessage = async (i: number, n: number, kind: number) => {
      const me = `p${i}`;
      const body = `${me}#${n}`;
      const [command, args, recipients]: [string, string[], string[]] =
        kind === 1
          ? ['send_msg', [`p${(i + 1) % PEERS}`, body], [`p${(i + 1) % PEERS}`]]
          : kind === 2
            ? ['send_group_msg', ['chat', body], names.filter((u) => u !== me)]
            : ['publish', ['chat', 'news', body], subscribers.filter((u) => u !== me)];
      ledger.sending(body, me, recipients);
      try {
        const sent = (await peers[i]!.execute(command, args)) as
          | { state: 'sent'; streamId: string; seq: number }
          | { state: 'pending' };
        // Queued while the peer had lost its tracker: pending in the outbox, like a failed send.
        if (sent.state === 'pending') ledger.failedToSend(body);
        else ledger.accepted(body, sent.streamId, sent.seq);
      } catch (err) {
        // No answer after the retries: pending in the outbox, sent again at the next catch-up.
        if (err instanceof CoterieError && err.code === 'TRACKER_UNAVAILABLE') ledger.failedToSend(body);
        else ledger.refusedToSend(body);
        failedMessages.push(`${body}: ${(err as Error).message}`);
      }
    };
    const writer = async (i: number) => {
      for (let n = 0; !stopWriting; n++) {
        const kind = (n + i) % 4;
        if (kind === 0) await createGroup(i, `c-${i}-${n}`);
        else await sendMessage(i, n, kind);
        await new Promise((r) => setTimeout(r, WRITE_PAUSE_MS));
      }
    };
    const writers = peers.map((_, i) => writer(i));

    // The chaos: every few seconds SIGKILL the next tracker, and bring it back a second later
    // (on the same port and data directory) while the following one is being killed. Halfway
    // between two kills, cut another tracker's LISTEN connection (it misses events until it
    // listens again).
    const kills: number[] = [];
    let listenersCut = 0;
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    const cutListener = async (i: number) => {
      const id = readFileSync(join(root, `t${i}`, 'tracker.id'), 'utf8').trim();
      const r = await admin.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1',
        [`coterie-listen-${id}`],
      );
      listenersCut += r.rowCount ?? 0;
    };
    const restarts: Promise<void>[] = [];
    for (let k = 0; k < CHAOS_KILLS; k++) {
      await new Promise((r) => setTimeout(r, KILL_EVERY_MS / 2));
      await cutListener((k + 1) % 3);
      await new Promise((r) => setTimeout(r, KILL_EVERY_MS / 2));
      const i = k % 3;
      await restarts[i];
      await trackers[i]!.stop('SIGKILL');
      kills.push(i);
      restarts[i] = new Promise((r) => setTimeout(r, DOWN_FOR_MS)).then(() => startTrackerAt(i));
    }
    await Promise.all(restarts);
    await admin.end();
    stopWriting = true;
    await Promise.all(writers);

    // Downloads completed, byte-identical.
    const results = await Promise.allSettled(downloads);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled']);
    expect(sha256(dests[0]!)).toBe(sha256(files[0]!));
    expect(sha256(dests[1]!)).toBe(sha256(files[1]!));

    // Every peer connected again.
    for (const p of peers) await until('peer reconnected', () => connected(p), 20_000);

    // Every accepted write is there exactly once, owned by whoever created it.
    const token = (
      await api.call<{ token: string }>('POST', '/v1/login', {
        body: { userId: 'p0', password: 'pw-p0-secret' },
      })
    ).body.token;
    const listed = (
      await client(trackers[1]!.url).call<{ groups: { groupId: string; owner: string }[] }>(
        'GET',
        '/v1/groups',
        {
          token,
        },
      )
    ).body.groups.filter((g) => g.groupId.startsWith('c-'));
    const ids = listed.map((g) => g.groupId);
    expect(new Set(ids).size).toBe(ids.length);
    const owners = new Map(listed.map((g) => [g.groupId, g.owner]));
    const missing = [...accepted.keys()].filter((g) => !owners.has(g));
    expect(missing).toEqual([]);
    for (const [g, owner] of accepted) expect(owners.get(g)).toBe(owner);
    // A create refused as existing was the same write answered late: it is there, the creator's.
    for (const g of refusedAsExisting) expect(owners.get(g)).toBe(`p${g.split('-')[1]}`);
    // Nothing stored that no one was told about, beyond those.
    const told = new Set([...accepted.keys(), ...refusedAsExisting]);
    const unexplained = ids.filter((g) => !told.has(g));

    // Every message stored reached every recipient (bounded wait for the last pushes), exactly
    // once, in order; nothing arrived that was not sent.
    const lostBeforeWait = new Map(sessionsLost);
    await until('every message delivered', () => ledger.missing().length === 0, 30_000).catch(() => {});
    const lostInWait = [...sessionsLost]
      .filter(([p, n]) => n > (lostBeforeWait.get(p) ?? 0))
      .map(([p, n]) => `${p} ${n - (lostBeforeWait.get(p) ?? 0)}`);
    process.stderr.write(`[chaos] ${ledger.summary()}\n${failedMessages.slice(0, 5).join('\n')}\n`);
    expect(
      ledger.missing().length,
      `${ledger.explainMissing()} | sessions lost while waiting: ${lostInWait.join(', ') || 'none'}`,
    ).toBe(0);
    expect(ledger.duplicates()).toEqual([]);
    expect(ledger.outOfOrder()).toEqual([]);
    expect(ledger.sendOrderBroken()).toEqual([]);
    expect(ledger.unexplained()).toEqual([]);
    // Messages flowed throughout (a few thousand on an idle machine; a floor far below that).
    expect(ledger.acceptedCount()).toBeGreaterThan(100);

    process.stderr.write(
      `[chaos] ${kills.length} tracker kills, ${listenersCut} LISTEN connections cut; ${accepted.size} groups accepted, ${refusedAsExisting.length} answered late (GROUP_EXISTS), ${failed.length} failed, ${unexplained.length} stored without an answer\n${failed.slice(0, 5).join('\n')}\n`,
    );
    // A write may fail (TRACKER_UNAVAILABLE) only when its answer was never given; such a write
    // may or may not have been stored: those are the unexplained ones, never more.
    expect(unexplained.length).toBeLessThanOrEqual(failed.length);
  }, 150_000);
}
