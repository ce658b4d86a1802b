// Cluster benchmark (`npm run bench -- cluster`): trackers over one PostgreSQL on loopback.
//   cluster.lookup.Nt     GET a file's live seeders, spread over N = 1, 2, 3 trackers: req/s
//   cluster.share.Nt      POST a new manifest to a group (a durable write), over N trackers: req/s
//   cluster.send.Nt       direct messages sent over sessions by 64 users (each user on one of the N
//                         trackers, 16 sends in flight each, fresh client ids): msgs/s, with the
//                         trackers' CPU-s per 1,000 and the load; then the store is checked against
//                         the answers: cluster.send.Nt.lost and .duplicated (messages, must be 0);
//                         totalCpuSecondsPer1k (trackers + PostgreSQL + senders, all on these cores),
//                         cpuBoundRate (the cores over it) and, at 2t and 3t, cpuBoundRatio (1t's
//                         total over this one's: the ratio to 1t the cores allow)
//   cluster.failover.*    a peer's tracker freezes (SIGSTOP: no heartbeat, no FIN), 20 times:
//                         time from the freeze to the peer connected to another tracker and a
//                         command answered, p50/p99 ms, with the default 5 s and with a 1 s heartbeat
//   cluster.failover.kill.*  the same with SIGKILL (the connection drops at once)
//   cluster.send.3t.standby.async / .sync   cluster.send.3t on a primary whose one streaming
//                         standby is asynchronous, then synchronous (a commit waits for its flush),
//                         BENCH_STANDBY_ROUNDS times each in turn (default 2), with the trackers'
//                         CPU-s per 1,000; .standby.ratio: sync / async (bench/lib/standby-modes.ts)
// PostgreSQL: COTERIE_TEST_PG_URL, or a throwaway one from scripts/pg-test-server.sh (fsync on).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import pg from 'pg';
import WebSocket from 'ws';
import { sessionHeartbeat } from '../src/peer/config.js';
import { type PeerDaemon, startPeerDaemon } from '../src/peer/daemon.js';
import { connectSenders, SENDERS, WINDOW } from './lib/cluster-sends.js';
import { call } from './lib/http.js';
import { fakeManifest } from './lib/manifests.js';
import { type StandbyMode, startStandbyPair } from './lib/standby-modes.js';
import { spawnTracker, type TrackerProcess } from './lib/tracker-process.js';

const SCRIPT = fileURLToPath(new URL('../scripts/pg-test-server.sh', import.meta.url));
const CONNECTIONS = 48;
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 8);
const KILLS = Number(process.env.BENCH_KILLS ?? 20);
/** The send part's warm-up, per sender and per tracker (BENCH_WARM_PER_SENDER). */
const WARM_PER_SENDER = Number(process.env.BENCH_WARM_PER_SENDER ?? 300);
/** Which parts to run: throughput, failover (freezes), kill (SIGKILLs); default all. `send`: the sends of throughput alone. */
/** How many trackers the throughput parts run with, in turn. */
const SIZES = (process.env.BENCH_TRACKERS ?? '1,2,3').split(',').map(Number);
const PARTS = new Set((process.env.BENCH_PARTS ?? 'throughput,standby,failover,kill').split(','));
const STANDBY_ROUNDS = Number(process.env.BENCH_STANDBY_ROUNDS ?? 2);
/** The failover part's heartbeats: `default` (5 s), `hb1s`; both unless narrowed. */
const FAILOVER_HEARTBEATS = new Set((process.env.BENCH_FAILOVER_HEARTBEATS ?? 'default,hb1s').split(','));

type CannonRequest = NonNullable<Parameters<typeof autocannon>[0]['requests']>[number];
const round2 = (x: number) => Math.round(x * 100) / 100;
/** CPU-s per 1,000 messages are around 0.1: three decimals. */
const round3 = (x: number) => Math.round(x * 1000) / 1000;
const emit = (name: string, value: number, unit: string, extra: Record<string, number | undefined> = {}) =>
  process.stdout.write(`${JSON.stringify({ name, value: round2(value), unit, ...extra })}\n`);
/** cluster.send.1t of this run: the reference of 2t and 3t. */
let sendOneTracker: number | undefined;
/** cluster.send.1t's CPU-s per 1,000 of the whole bench (trackers, PostgreSQL, senders): 2t's and 3t's bound. */
let sendOneTrackerTotalCpu: number | undefined;
const log = (msg: string) => process.stderr.write(`[cluster bench] ${msg}\n`);
/** A tracker starting on a loaded machine (the shared VM at load 20 and more) may take a minute. */
const BENCH_TRACKER = { echoStderr: true, startMs: 90_000 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function kill(t: TrackerProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (t.proc.exitCode !== null || t.proc.signalCode !== null) return;
  const exited = new Promise((r) => t.proc.once('exit', r));
  t.proc.kill(signal);
  await exited;
}

async function freshDatabase(base: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `coterie_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name} TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'`);
  await admin.end();
  const u = new URL(base);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: base });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

function openSession(url: string, token: string, peerId: string, seeding: string[]): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/session`, {
      headers: { authorization: `Bearer ${token}` },
    });
    ws.once('error', reject);
    ws.once('open', () =>
      ws.send(JSON.stringify({ type: 'hello', v: 1, peerId, addresses: ['127.0.0.1:9'], seeding })),
    );
    ws.once('message', () => resolve(ws));
  });
}

/** Runs one autocannon per tracker at once (the load split evenly), returns the summed rate. */
async function spread(
  trackers: TrackerProcess[],
  make: (t: TrackerProcess) => Omit<Parameters<typeof autocannon>[0], 'connections'>,
): Promise<{ rps: number; errors: number }> {
  const per = Math.max(1, Math.floor(CONNECTIONS / trackers.length));
  const results = await Promise.all(
    trackers.map((t) => autocannon({ ...make(t), connections: per, duration: DURATION_S })),
  );
  return {
    rps: results.reduce((s, r) => s + r.requests.average, 0),
    errors: results.reduce((s, r) => s + r.non2xx + r.errors, 0),
  };
}

/** One store and one key file for a run's trackers: the key file wraps the signing keys the store holds. */
function clusterStore(url: string, root: string): string[] {
  // Plain HTTP: autocannon and the raw sessions measure the tracker, comparable with earlier figures.
  return ['--store', url, '--key-file', join(root, 'tracker.key'), '--insecure-http'];
}

/** `label`: the sends' figure name instead of cluster.send.Nt (and no lookups, shares). */
async function throughput(baseUrl: string, root: string, n: number, label?: string): Promise<SendFigures> {
  const db = await freshDatabase(baseUrl);
  const trackers: TrackerProcess[] = [];
  try {
    for (let i = 0; i < n; i++)
      trackers.push(await spawnTracker(join(root, `tp${n}-${i}`), clusterStore(db.url, root), BENCH_TRACKER));
    const url = trackers[0]!.url;
    await call(url, 'POST', '/v1/users', undefined, { userId: 'bench', password: 'bench password' });
    const token = (
      await call<{ token: string }>(url, 'POST', '/v1/login', undefined, {
        userId: 'bench',
        password: 'bench password',
      })
    ).token;
    if (PARTS.has('throughput') && label === undefined) await lookupAndShare(trackers, token);
    return await sends(trackers, db.url, n, label);
  } finally {
    for (const t of trackers) await kill(t, 'SIGTERM');
    await db.drop();
  }
}

async function lookupAndShare(trackers: TrackerProcess[], token: string): Promise<void> {
  const n = trackers.length;
  const url = trackers[0]!.url;
  await call(url, 'POST', '/v1/groups', token, { groupId: 'bench' });
  const sockets: WebSocket[] = [];
  let fileId = '';
  for (let i = 0; i < 5; i++) {
    const peerId = randomBytes(32).toString('hex');
    fileId = (
      await call<{ fileId: string }>(url, 'POST', '/v1/groups/bench/files', token, {
        name: 'lookup.bin',
        manifest: fakeManifest('lookup', 16 * 1024 * 1024, 65536).manifest,
        peerId,
      })
    ).fileId;
    sockets.push(await openSession(trackers[i % n]!.url, token, peerId, [fileId]));
  }
  const headers = { authorization: `Bearer ${token}` };
  await spread(trackers, (t) => ({
    url: `${t.url}/v1/groups/bench/files/${fileId}/seeders`,
    headers,
    duration: 2,
  }));
  const lookup = await spread(trackers, (t) => ({
    url: `${t.url}/v1/groups/bench/files/${fileId}/seeders`,
    headers,
  }));
  if (lookup.errors > 0) log(`lookup ${n}t: ${lookup.errors} errors`);
  emit(`cluster.lookup.${n}t`, lookup.rps, 'req/s');

  const sharer = randomBytes(32).toString('hex');
  let k = 0;
  const share = await spread(trackers, (t) => ({
    url: `${t.url}/v1/groups/bench/files`,
    requests: [
      {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        setupRequest: (req: CannonRequest) => {
          k++;
          return {
            ...req,
            body: JSON.stringify({
              name: `f-${k}`,
              manifest: fakeManifest(`share-${k}-${process.pid}`, 1_000_000, 65536).manifest,
              peerId: sharer,
            }),
          };
        },
      },
    ],
  }));
  if (share.errors > 0) log(`share ${n}t: ${share.errors} errors`);
  emit(`cluster.share.${n}t`, share.rps, 'req/s');
  for (const s of sockets) s.terminate();
}

/** What a run of sends gave, for the standby part's means. */
interface SendFigures {
  rate: number;
  cpuPer1k: number;
  load1: number;
}

/**
 * Durable message sends over sessions (bench/lib/cluster-sends.ts). A timed
 * warm-up gives the rate; the measured run then makes a fixed number of
 * sends (about DURATION_S seconds' worth) and waits for every answer, so
 * that the store can be checked against the answers exactly: every message
 * answered `sent` is stored, once, and nothing else is.
 */
async function sends(
  trackers: TrackerProcess[],
  dbUrl: string,
  n: number,
  label = `cluster.send.${n}t`,
): Promise<SendFigures> {
  const cluster = await connectSenders(
    trackers.map((t) => ({ url: t.url, pid: t.proc.pid! })),
    dbUrl,
  );
  let result: Awaited<ReturnType<typeof cluster.run>>;
  try {
    // Each tracker warms up on as many messages as one tracker alone does (300 a sender, 19,200 in
    // all): a tracker that has run a few thousand is still compiling its hot paths and growing its
    // heap, and that CPU, spread over a short measured run, was read as the cluster's cost per message.
    const warm = await cluster.run('warm', WARM_PER_SENDER * trackers.length);
    const perSender = Math.max(100, Math.round((warm.rate * DURATION_S) / SENDERS));
    result = await cluster.run('run', perSender);
  } finally {
    await cluster.close();
  }
  const { rate, seconds, answered, failed } = result;
  // Everything the bench runs shares this machine's cores: trackers, PostgreSQL and the senders.
  // cpuBoundRate is the rate those cores allow at this CPU per message; cpuBoundRatio (2t, 3t) the
  // ratio to 1t they allow, 1t's CPU per message over this one's: where 1t already uses every core
  // (cpuBoundRate ≈ rate), a cluster on the same cores is faster only if it costs less per message.
  const totalCpuPer1k = result.trackerCpuPer1k + result.pgCpuPer1k + result.clientCpuPer1k;
  if (n === 1 && label === 'cluster.send.1t') {
    sendOneTracker = rate;
    sendOneTrackerTotalCpu = totalCpuPer1k;
  }
  const ref =
    n > 1 && sendOneTracker !== undefined && label === `cluster.send.${n}t`
      ? {
          ref: round2(sendOneTracker),
          ratio: round2(rate / sendOneTracker),
          cpuBoundRatio: round2((sendOneTrackerTotalCpu ?? 0) / totalCpuPer1k),
        }
      : {};
  // Trackers' CPU-seconds (all of them together) per 1,000 messages: moves less with the machine's load than the rate.
  const load1 = loadavg()[0]!;
  emit(label, rate, 'msgs/s', {
    ...ref,
    trackerCpuSecondsPer1k: round3(result.trackerCpuPer1k),
    pgCpuSecondsPer1k: round3(result.pgCpuPer1k),
    pgBackendCpuSecondsPer1k: round3(result.pgBackendCpuPer1k),
    pgBackgroundCpuSecondsPer1k: round3(result.pgBackgroundCpuPer1k),
    messagesScannedPerMessage: round2(result.messagesScannedPerMessage),
    clientCpuSecondsPer1k: round3(result.clientCpuPer1k),
    totalCpuSecondsPer1k: round3(totalCpuPer1k),
    cpuBoundRate: Math.round((cpus().length / totalCpuPer1k) * 1000),
    batchMean: Math.round(result.batchMean),
    trackerSyscallsPerMessage: round2(result.trackerSyscallsPerMessage),
    trackerWakeupsPer1k: Math.round(result.trackerWakeupsPer1k),
    load1: round2(load1),
  });

  // The store against the answers. A send that failed without an answer may or may not be stored.
  const c = new pg.Client({ connectionString: dbUrl });
  await c.connect();
  let stored: string[];
  let keys: number;
  try {
    const rows = await c.query<{ message_id: string }>(
      "SELECT message_id FROM messages WHERE client_id LIKE 'run-%'",
    );
    stored = rows.rows.map((r) => r.message_id);
    keys = Number(
      (
        await c.query<{ n: string }>(
          "SELECT count(DISTINCT (sender, client_id)) AS n FROM messages WHERE client_id LIKE 'run-%'",
        )
      ).rows[0]!.n,
    );
  } finally {
    await c.end();
  }
  const storedSet = new Set(stored);
  const lost = [...answered].filter((id) => !storedSet.has(id)).length;
  const unanswered = stored.filter((id) => !answered.has(id)).length;
  const duplicated = stored.length - keys;
  log(
    `${label}: ${SENDERS} senders × ${WINDOW} in flight, ${seconds.toFixed(1)} s; ${answered.size} answered, ${failed} failed; ` +
      `${stored.length} stored: ${lost} answered but not stored, ${duplicated} stored twice, ${unanswered} stored without an answer` +
      (unanswered > failed ? ' (MORE THAN THE FAILED SENDS)' : ''),
  );
  emit(`${label}.lost`, lost, 'messages');
  emit(`${label}.duplicated`, duplicated + Math.max(0, unanswered - failed), 'messages');
  return { rate, cpuPer1k: result.trackerCpuPer1k, load1 };
}

/**
 * The cost of synchronous replication: cluster.send.3t over a primary with one streaming standby,
 * asynchronous then synchronous, in turn, each round on a fresh database; then each mode's mean
 * and the ratio sync / async of the rates and of the CPU-s per 1,000 (the figure a loaded
 * machine moves least: a commit's wait for the standby costs the trackers no CPU, only time).
 */
async function standbyCost(root: string): Promise<void> {
  const pair = startStandbyPair();
  const runs: Record<StandbyMode, SendFigures[]> = { async: [], sync: [] };
  try {
    for (let round = 0; round < STANDBY_ROUNDS; round++) {
      for (const mode of ['async', 'sync'] as const) {
        await pair.setMode(mode);
        log(`standby ${mode}, round ${round + 1} of ${STANDBY_ROUNDS}`);
        runs[mode].push(
          await throughput(
            pair.adminUrl,
            join(root, `sb-${round}`),
            3,
            `cluster.send.3t.standby.${mode}.r${round + 1}`,
          ),
        );
      }
    }
  } finally {
    pair.stop();
  }
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  const of = (mode: StandbyMode) => ({
    rate: mean(runs[mode].map((r) => r.rate)),
    cpu: mean(runs[mode].map((r) => r.cpuPer1k)),
    load1: runs[mode].map((r) => round2(r.load1)).join('/'),
  });
  const [a, s] = [of('async'), of('sync')];
  emit('cluster.send.3t.standby.async', a.rate, 'msgs/s', {
    trackerCpuSecondsPer1k: round3(a.cpu),
    rounds: STANDBY_ROUNDS,
  });
  emit('cluster.send.3t.standby.sync', s.rate, 'msgs/s', {
    trackerCpuSecondsPer1k: round3(s.cpu),
    rounds: STANDBY_ROUNDS,
  });
  emit('cluster.send.3t.standby.ratio', s.rate / a.rate, 'sync/async', { cpuRatio: round2(s.cpu / a.cpu) });
  log(`standby: load1 per run async ${a.load1}, sync ${s.load1}`);
}

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};

/** A peer daemon in this process on a 3-tracker cluster; its tracker is frozen (or killed) KILLS times. */
async function failover(
  baseUrl: string,
  root: string,
  label: string,
  heartbeatMs: number,
  signal: 'SIGSTOP' | 'SIGKILL',
) {
  const db = await freshDatabase(baseUrl);
  const trackers: TrackerProcess[] = [];
  let peer: PeerDaemon | undefined;
  try {
    for (let i = 0; i < 3; i++)
      trackers.push(
        await spawnTracker(join(root, `fo-${label}-${i}`), clusterStore(db.url, root), BENCH_TRACKER),
      );
    await call(trackers[0]!.url, 'POST', '/v1/users', undefined, {
      userId: 'fo',
      password: 'bench password',
    });
    peer = await startPeerDaemon({
      dataDir: join(root, `peer-${label}`),
      trackers: trackers.map((t) => t.url),
      // The default: the daemon's own timings; another, as --tracker-heartbeat-ms gives it.
      ...(label === 'hb1s' ? sessionHeartbeat(heartbeatMs) : {}),
    });
    await peer.execute('login', ['fo', 'bench password']);
    const status = async () => ((await peer!.execute('status', [])) as { tracker: string | null }).tracker;
    const times: number[] = [];
    const loads: number[] = [];
    for (let k = 0; k < KILLS; k++) {
      let current: string | null = null;
      for (let i = 0; i < 500 && current === null; i++) {
        current = await status();
        if (current === null) await sleep(20);
      }
      const idx = trackers.findIndex((t) => t.url === current);
      if (idx < 0) throw new Error(`peer not connected (${current})`);
      const victim = trackers[idx]!;
      // Let the session settle (a heartbeat heard), as in steady state.
      await sleep(200 + Math.random() * heartbeatMs);
      const t0 = Date.now();
      victim.proc.kill(signal);
      for (;;) {
        const now = await status();
        if (now !== null && now !== victim.url) {
          await peer.execute('list_groups', []);
          break;
        }
        if (Date.now() - t0 > 60_000) throw new Error('no failover within 60 s');
        await sleep(10);
      }
      times.push(Date.now() - t0);
      loads.push(loadavg()[0]!);
      await kill(victim, 'SIGKILL');
      trackers[idx] = await spawnTracker(victim.dataDir, clusterStore(db.url, root), {
        ...BENCH_TRACKER,
        port: victim.port,
      });
    }
    log(`failover ${label}: ${times.join(' ')} ms`);
    const load1 = { load1Min: round2(Math.min(...loads)), load1Max: round2(Math.max(...loads)) };
    emit(`cluster.failover.${label}.p50`, percentile(times, 50), 'ms', load1);
    emit(`cluster.failover.${label}.p99`, percentile(times, 99), 'ms', load1);
  } finally {
    await peer?.stop();
    for (const t of trackers) {
      if (t.proc.signalCode === null && t.proc.exitCode === null) t.proc.kill('SIGCONT');
      await kill(t, 'SIGKILL');
    }
    await db.drop();
  }
}

async function main() {
  const root = mkdtempSync(join(tmpdir(), 'coterie-bench-cluster-'));
  let url = process.env.COTERIE_TEST_PG_URL ?? '';
  let pgDir: string | undefined;
  // The standby part brings its own primary and standby: the others need this store.
  if (['throughput', 'send', 'failover', 'kill'].some((p) => PARTS.has(p)) && url === '') {
    log('starting a throwaway PostgreSQL (fsync on)');
    const out = execFileSync('bash', [SCRIPT, 'start'], { env: { ...process.env, PG_TEST_FSYNC: 'on' } })
      .toString()
      .trim()
      .split('\n');
    url = out[0]!;
    pgDir = out[1]!;
  }
  try {
    for (const n of PARTS.has('throughput') || PARTS.has('send') ? SIZES : []) {
      log(
        `throughput with ${n} tracker(s): ${CONNECTIONS} connections (lookups, shares), ${SENDERS} senders × ${WINDOW} in flight (sends), ${DURATION_S} s each`,
      );
      await throughput(url, root, n);
    }
    if (PARTS.has('standby')) {
      log(
        'standby: cluster.send.3t with an asynchronous, then a synchronous standby (pg-replica-set.sh, fsync on)',
      );
      await standbyCost(root);
    }
    if (PARTS.has('failover') && FAILOVER_HEARTBEATS.has('default')) {
      log(`failover: ${KILLS} freezes with the default 5 s heartbeat`);
      await failover(url, root, 'default', 5000, 'SIGSTOP');
    }
    if (PARTS.has('failover') && FAILOVER_HEARTBEATS.has('hb1s')) {
      log(`failover: ${KILLS} freezes with a 1 s heartbeat`);
      await failover(url, root, 'hb1s', 1000, 'SIGSTOP');
    }
    if (PARTS.has('kill')) {
      log(`failover: ${KILLS} SIGKILLs with the default heartbeat`);
      await failover(url, root, 'kill', 5000, 'SIGKILL');
    }
  } finally {
    if (pgDir !== undefined) execFileSync('bash', [SCRIPT, 'stop', pgDir]);
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
