// Tracker benchmark (`npm run bench -- tracker`): a real tracker process on
// loopback, autocannon with 64 connections in this process.
//   tracker.lookup    GET a 1 MiB file (manifest + 5 live seeders): req/s and p99 ms (target ≥ 10,000/s, p99 ≤ 20 ms)
//   tracker.lookup.seeders  GET only the live seeders (what a downloader polls)
//   tracker.lookup.64MiB    GET a 64 MiB file (1,024-piece manifest + live seeders)
//   tracker.share     POST a new manifest to a group: req/s and p99 ms (target ≥ 2,000/s)
//   *.cpu             tracker CPU time per request (µs): the cost whatever else
//                     runs on the machine (1e6 / cpu ≈ req/s one free core could serve)
//   tracker.sessions  5,000 WebSocket sessions heartbeating: KiB of tracker RSS per session (target ≤ 20)
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import WebSocket from 'ws';
import { cpuSeconds } from './lib/cpu.js';
import { call } from './lib/http.js';
import { fakeManifest } from './lib/manifests.js';
import { spawnTracker } from './lib/tracker-process.js';

const CONNECTIONS = 64;
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 10);
const SESSIONS = Number(process.env.BENCH_SESSIONS ?? 5000);
const SEEDERS = 5;
/** `BENCH_PARTS=lookup` (or `share`, `sessions`, comma-separated) runs those parts alone. */
const PARTS = new Set((process.env.BENCH_PARTS ?? 'lookup,share,sessions').split(','));

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const emit = (name: string, value: number, unit: string) =>
  process.stdout.write(`${JSON.stringify({ name, value: Math.round(value * 100) / 100, unit })}\n`);
const log = (msg: string) => process.stderr.write(`[tracker bench] ${msg}\n`);

async function user(url: string, userId: string): Promise<string> {
  await call(url, 'POST', '/v1/users', undefined, { userId, password: 'bench password' });
  return (
    await call<{ token: string }>(url, 'POST', '/v1/login', undefined, { userId, password: 'bench password' })
  ).token;
}

function openSession(url: string, token: string, peerId: string, seeding: string[]): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/session`, {
      headers: { authorization: `Bearer ${token}` },
      perMessageDeflate: false,
    });
    ws.once('error', reject);
    ws.once('open', () =>
      ws.send(JSON.stringify({ type: 'hello', v: 1, peerId, addresses: ['127.0.0.1:9'], seeding })),
    );
    ws.once('message', (d) => {
      const m = JSON.parse(d.toString()) as { type: string };
      if (m.type === 'welcome') resolve(ws);
      else reject(new Error(`no welcome: ${d.toString()}`));
    });
  });
}

/** CPU time (user + system) the process has used, in ms: per-request cost independent of machine load. */
const cpuMs = (pid: number) => cpuSeconds(pid) * 1000;

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? Number.NaN);
}

async function benchHttp(dataDir: string) {
  // Plain HTTP: autocannon measures the tracker, comparable with earlier figures (TLS is not its subject).
  const tracker = await spawnTracker(dataDir, ['--insecure-http'], { echoStderr: true, startMs: 20_000 });
  const { url, proc } = tracker;
  try {
    const token = await user(url, 'bench');
    await call(url, 'POST', '/v1/groups', token, { groupId: 'bench' });
    // Two files, each with SEEDERS live seeders: 1 MiB (16 pieces, the typical lookup) and
    // 64 MiB (1,024 pieces, a ~70 KB manifest, where encoding and sending the bytes dominate).
    const sockets: WebSocket[] = [];
    const fileIds: string[] = [];
    const peers = Array.from({ length: SEEDERS }, () => randomBytes(32).toString('hex'));
    for (const [name, size] of [
      ['small.bin', 1024 * 1024],
      ['big.bin', 64 * 1024 * 1024],
    ] as const) {
      let fileId = '';
      for (const peerId of peers) {
        const r = await call<{ fileId: string }>(url, 'POST', '/v1/groups/bench/files', token, {
          name,
          manifest: fakeManifest(name, size, 65536).manifest,
          peerId,
        });
        fileId = r.fileId;
      }
      fileIds.push(fileId);
    }
    for (const peerId of peers) sockets.push(await openSession(url, token, peerId, fileIds));
    for (const fileId of fileIds) {
      const detail = await call<{ seeders: unknown[] }>(
        url,
        'GET',
        `/v1/groups/bench/files/${fileId}`,
        token,
      );
      if (detail.seeders.length !== SEEDERS)
        throw new Error(`expected ${SEEDERS} seeders, got ${detail.seeders.length}`);
    }

    const headers = { authorization: `Bearer ${token}` };
    const measure = async (name: string, path: string, what: string) => {
      log(`${name}: ${what}, ${CONNECTIONS} connections, ${DURATION_S} s`);
      const cpu0 = cpuMs(proc.pid!);
      const r = await autocannon({
        url: `${url}${path}`,
        connections: CONNECTIONS,
        duration: DURATION_S,
        headers,
      });
      const cpuUs = ((cpuMs(proc.pid!) - cpu0) * 1000) / r.requests.total;
      if (r.non2xx > 0 || r.errors > 0) log(`${name}: ${r.non2xx} non-2xx, ${r.errors} errors`);
      emit(name, r.requests.average, 'req/s');
      emit(`${name}.p99`, r.latency.p99, 'ms');
      emit(`${name}.cpu`, cpuUs, 'µs/req');
    };
    if (PARTS.has('lookup')) await lookups(url, fileIds, measure, headers);
    if (PARTS.has('share')) await shares(url, proc.pid!, headers);
    for (const s of sockets) s.close();
  } finally {
    await tracker.stop();
  }
}

type Measure = (name: string, path: string, what: string) => Promise<void>;

async function lookups(url: string, fileIds: string[], measure: Measure, headers: Record<string, string>) {
  // Warm up (JIT, caches) before measuring.
  await autocannon({
    url: `${url}/v1/groups/bench/files/${fileIds[0]}`,
    connections: CONNECTIONS,
    duration: 2,
    headers,
  });
  await measure(
    'tracker.lookup',
    `/v1/groups/bench/files/${fileIds[0]}`,
    `GET a 1 MiB file (manifest + ${SEEDERS} live seeders)`,
  );
  // Dev aid: BENCH_LOOKUP_ONLY=1 measures the 1 MiB lookup alone (a profile of that route only).
  if (process.env.BENCH_LOOKUP_ONLY === '1') return;
  await measure(
    'tracker.lookup.seeders',
    `/v1/groups/bench/files/${fileIds[0]}/seeders`,
    `GET …/seeders (${SEEDERS} live seeders), what a downloader polls`,
  );
  await measure(
    'tracker.lookup.64MiB',
    `/v1/groups/bench/files/${fileIds[1]}`,
    `GET a 64 MiB file (1,024-piece manifest + ${SEEDERS} live seeders)`,
  );
}

async function shares(url: string, pid: number, headers: Record<string, string>) {
  log(`share: ${CONNECTIONS} connections, ${DURATION_S} s, a new small manifest per request`);
  const sharer = randomBytes(32).toString('hex');
  const shareBody = (i: number) =>
    JSON.stringify({
      name: `f-${i}`,
      manifest: fakeManifest(`share-${i}-${process.pid}`, 1_000_000, 65536).manifest,
      peerId: sharer,
    });
  // Bodies are built before the run so that the load generator, sharing the machine, stays light.
  const bodies = Array.from({ length: 60_000 * Math.max(1, Math.ceil(DURATION_S / 10)) }, (_, i) =>
    shareBody(i),
  );
  let n = 0;
  const cpu0 = cpuMs(pid);
  const share = await autocannon({
    url: `${url}/v1/groups/bench/files`,
    connections: CONNECTIONS,
    duration: DURATION_S,
    requests: [
      {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        setupRequest: (req) => {
          const body = bodies[n++];
          // Past the prepared bodies (a very fast machine), fall back to building them here.
          return { ...req, body: body ?? shareBody(n) };
        },
      },
    ],
  });
  if (share.non2xx > 0 || share.errors > 0) log(`share: ${share.non2xx} non-2xx, ${share.errors} errors`);
  emit('tracker.share', share.requests.average, 'req/s');
  emit('tracker.share.p99', share.latency.p99, 'ms');
  emit('tracker.share.cpu', ((cpuMs(pid) - cpu0) * 1000) / share.requests.total, 'µs/req');
}

async function benchSessions(dataDir: string) {
  // Heartbeat every second so that every session is pinged several times during the measurement.
  const tracker = await spawnTracker(
    dataDir,
    ['--heartbeat-interval-ms', '1000', '--heartbeat-timeout-ms', '5000', '--insecure-http'],
    { echoStderr: true, startMs: 20_000 },
  );
  const { url, proc } = tracker;
  const sockets: WebSocket[] = [];
  try {
    const token = await user(url, 'sessions');
    // Warm the process up (JIT, pools) with a few sessions before the baseline.
    for (let i = 0; i < 50; i++)
      sockets.push(await openSession(url, token, randomBytes(32).toString('hex'), []));
    for (const s of sockets.splice(0)) s.close();
    await new Promise((r) => setTimeout(r, 2000));
    const before = rssKiB(proc.pid!);
    log(`sessions: opening ${SESSIONS} (tracker RSS before: ${before} KiB)`);
    const BATCH = 250;
    for (let i = 0; i < SESSIONS; i += BATCH) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(BATCH, SESSIONS - i) }, () =>
          openSession(url, token, randomBytes(32).toString('hex'), [sha(`seed-${i}`)]),
        ),
      );
      sockets.push(...batch);
    }
    // Let several heartbeat rounds pass; every session must still be there.
    await new Promise((r) => setTimeout(r, 4000));
    const health = await call<{ sessions: number }>(url, 'GET', '/healthz');
    const after = rssKiB(proc.pid!);
    const alive = sockets.filter((s) => s.readyState === WebSocket.OPEN).length;
    log(`sessions: ${health.sessions} on the tracker, ${alive} open here, RSS after: ${after} KiB`);
    if (health.sessions < SESSIONS)
      throw new Error(`only ${health.sessions} of ${SESSIONS} sessions survived`);
    emit('tracker.sessions', (after - before) / SESSIONS, 'KiB/session');
  } finally {
    for (const s of sockets) s.terminate();
    await tracker.stop();
  }
}

const dir = mkdtempSync(join(tmpdir(), 'coterie-bench-tracker-'));
try {
  if (PARTS.has('lookup') || PARTS.has('share')) await benchHttp(join(dir, 'http'));
  if (PARTS.has('sessions')) await benchSessions(join(dir, 'sessions'));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
