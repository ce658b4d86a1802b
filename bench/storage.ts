// Storage peers benchmark (issue 16): a tracker and five `coterie peer` processes (a sharer and
// four storage peers, each in its own zone) on loopback. Prints one JSON line per figure:
//   storage.replicate.1GiB   MiB/s of replica bytes written: from set_replication 3 until every
//                            file of 1 GiB (100 files) has 3 verified replicas (also .seconds)
//   storage.repair.1GiB      s from the end of a SIGKILLed storage peer's grace until every file
//                            is back at 3 (also .from_kill: s from the SIGKILL itself)
//   storage.update.ops       compare-and-set updates (update with ifVersion) per second, 10 clients
//   storage.lock.p99         ms for a lock, 10 clients locking and unlocking their own names
// Targets on this 2-core machine: replication ≥ 150 MiB/s, repair ≤ 30 s. BENCH_STORAGE_MIB
// scales the data (default 1024); BENCH_STORAGE_ONLY=replicate stops after the first figure (to
// iterate on the replication rate); BENCH_STORAGE_FOLDER=1 shares the same 100 files as one folder
// share (figures named storage.replicate_folder.*: one replica is a whole tree). The load average is printed beside the figures, and the CPU
// seconds the storage peers (and the sharer) spent per GiB of replicas, which moves less with load.
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { callDaemon } from '../src/peer/control/client.js';
import type { FileList } from '../src/protocol/api.js';
import { cpuSeconds } from './lib/cpu.js';
import { api, call, userToken } from './lib/http.js';
import { fakeManifest, randomPeerId } from './lib/manifests.js';
import { spawnPeer } from './lib/peer-process.js';
import { randomFile } from './lib/random-file.js';
import { makeTempDir } from './lib/temp-dir.js';
import { spawnTracker } from './lib/tracker-process.js';
import { until } from './lib/wait.js';

const TOTAL_MIB = Number(process.env.BENCH_STORAGE_MIB ?? 1024);
const FILES = 100;
const STORAGE = ['s1', 's2', 's3', 's4'];
const GRACE_MS = 5000;
const CLIENTS = 10;
const OPS_SECONDS = 5;
const GROUP = 'bench';
const FOLDER = process.env.BENCH_STORAGE_FOLDER === '1';
const REPLICATE = FOLDER ? 'storage.replicate_folder' : 'storage.replicate';

const log = (s: string) => process.stderr.write(`${s}\n`);
const emit = (name: string, value: number, unit: string) =>
  process.stdout.write(`${JSON.stringify({ name, value: Number(value.toFixed(3)), unit })}\n`);
const load = () => loadavg()[0]!.toFixed(1);

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

const tmp = makeTempDir('coterie-bench-storage-');
const dir = (n: string) => join(tmp.path, n);
const run = <T>(n: string, command: string, ...args: string[]) =>
  callDaemon(dir(n), command, args) as Promise<T>;
const peers = new Map<string, ChildProcess>();

async function startPeer(n: string): Promise<void> {
  const child = await spawnPeer(
    n,
    ['--data-dir', dir(n), '--tracker', trackerUrl, '--no-shell', '--zone', n],
    // BENCH_STORAGE_PROF=DIR: a V8 CPU profile of each peer, written there when it stops.
    process.env.BENCH_STORAGE_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_STORAGE_PROF] : [],
  );
  peers.set(n, child);
}

/** Seconds until every file of the group has `n` verified replicas on live storage peers. */
async function untilReplicated(n: number, what: string): Promise<number> {
  const t0 = performance.now();
  await until(
    what,
    async () =>
      (await run<FileList>('alice', 'list_files', GROUP)).files.every((f) => f.replicas?.live === n),
    30 * 60_000,
    100,
  );
  return (performance.now() - t0) / 1000;
}

/** `CLIENTS` users, each doing `op` on its own name as fast as it answers, for `seconds`. */
async function clients(
  base: string,
  prefix: string,
  op: (token: string, name: string, i: number) => Promise<number>,
): Promise<{ count: number; seconds: number; times: number[] }> {
  const owner = await userToken(base, `${prefix}-owner`);
  await call(base, 'POST', '/v1/groups', owner, { groupId: prefix });
  const tokens: string[] = [];
  for (let c = 0; c < CLIENTS; c++) {
    const userId = `${prefix}-${c}`;
    const token = await userToken(base, userId);
    await call(base, 'POST', `/v1/groups/${prefix}/join`, token);
    await call(base, 'POST', `/v1/groups/${prefix}/requests/${userId}/accept`, owner);
    await call(base, 'POST', `/v1/groups/${prefix}/files`, token, {
      name: `n${c}`,
      manifest: fakeManifest(`${prefix}-${c}-v1`, 4096).manifest,
      peerId: randomPeerId(),
    });
    tokens.push(token);
  }
  const times: number[] = [];
  const end = performance.now() + OPS_SECONDS * 1000;
  const t0 = performance.now();
  await Promise.all(
    tokens.map(async (token, c) => {
      for (let i = 0; performance.now() < end; i++) times.push(await op(token, `n${c}`, i));
    }),
  );
  return { count: times.length, seconds: (performance.now() - t0) / 1000, times };
}

async function updates(base: string): Promise<void> {
  const peerId = randomPeerId();
  const { count, seconds } = await clients(base, 'upd', async (token, name, i) => {
    const t = performance.now();
    const r = await api(
      base,
      'POST',
      `/v1/groups/upd/files/${name}/versions`,
      { manifest: fakeManifest(`${name}-${i + 2}`, 4096).manifest, peerId, ifVersion: i + 1 },
      token,
    );
    if (r.status !== 201) throw new Error(`update ${name} v${i + 2}: ${r.status} ${r.text}`);
    return performance.now() - t;
  });
  emit('storage.update.ops', count / seconds, 'ops/s');
  log(`  ${count} compare-and-set updates by ${CLIENTS} clients in ${seconds.toFixed(1)} s (load ${load()})`);
}

async function locks(base: string): Promise<void> {
  const { count, times } = await clients(base, 'lck', async (token, name) => {
    const t = performance.now();
    const r = await api(base, 'POST', `/v1/groups/lck/files/${name}/lock`, { ttlSeconds: 60 }, token);
    const ms = performance.now() - t;
    if (r.status !== 200) throw new Error(`lock ${name}: ${r.status} ${r.text}`);
    await call(base, 'POST', `/v1/groups/lck/files/${name}/unlock`, token);
    return ms;
  });
  emit('storage.lock.p99', percentile(times, 99), 'ms');
  log(`  ${count} locks by ${CLIENTS} clients; p50 ${percentile(times, 50).toFixed(2)} ms (load ${load()})`);
}

async function repairUpdatesLocks(): Promise<void> {
  // Which storage peer holds the most, killed: the repair has the most to do.
  const held = (n: string) => readFileSync(join(dir(n), 'peer.log'), 'utf8').split('"replica held"').length;
  const victim = STORAGE.reduce((a, b) => (held(b) > held(a) ? b : a));
  log(`SIGKILL ${victim}; grace ${GRACE_MS} ms (load ${load()})`);
  const killedAt = performance.now();
  peers.get(victim)!.kill('SIGKILL');
  await until(
    'the killed peer counted as away',
    async () =>
      (await run<FileList>('alice', 'list_files', GROUP)).files.some((f) => (f.replicas?.live ?? 3) < 3),
    60_000,
    50,
  );
  await untilReplicated(3, 'every file back at 3 replicas');
  const fromKill = (performance.now() - killedAt) / 1000;
  emit('storage.repair.1GiB', fromKill - GRACE_MS / 1000, 's');
  emit('storage.repair.1GiB.from_kill', fromKill, 's');
  log(`  back at 3 replicas ${fromKill.toFixed(1)} s after the SIGKILL (load ${load()})`);

  log('compare-and-set updates');
  await updates(trackerUrl);
  log('locks');
  await locks(trackerUrl);
}

const tracker = await spawnTracker(
  dir('tracker'),
  [
    '--scrypt-log-n',
    '10',
    '--storage-grace-ms',
    String(GRACE_MS),
    '--heartbeat-interval-ms',
    '500',
    '--heartbeat-timeout-ms',
    '1000',
  ],
  { echoStderr: true, startMs: 60_000 },
);
const trackerUrl = tracker.url;
try {
  for (const n of ['alice', ...STORAGE]) {
    await startPeer(n);
    await run(n, 'create_user', n, `password-of-${n}`);
    await run(n, 'login', n, `password-of-${n}`);
  }
  await run('alice', 'create_group', GROUP);
  for (const n of STORAGE) {
    await run(n, 'join_group', GROUP);
    await run('alice', 'accept_request', GROUP, n);
    await run(n, 'offer_storage', GROUP, `${TOTAL_MIB * 2}MiB`);
  }
  const fileBytes = Math.floor((TOTAL_MIB * 1024 * 1024) / FILES);
  log(`sharing ${FILES} files of ${(fileBytes / 1024 / 1024).toFixed(1)} MiB (load ${load()})`);
  for (let i = 0; i < FILES; i++) {
    const path = join(tmp.path, 'files', `f${i}.bin`);
    await randomFile(path, fileBytes);
    if (!FOLDER) await run('alice', 'upload_file', path, GROUP);
  }
  if (FOLDER) await run('alice', 'upload_file', join(tmp.path, 'files'), GROUP);
  const replicaMiB = (3 * fileBytes * FILES) / 1024 / 1024;
  log(`replicating to 3 storage peers (load ${load()})`);
  const cpu = (names: string[]) => names.reduce((n, p) => n + cpuSeconds(peers.get(p)!.pid!), 0);
  const cpuBefore = { storage: cpu(STORAGE), alice: cpu(['alice']) };
  await run('alice', 'set_replication', GROUP, '3');
  const replicate = await untilReplicated(3, 'every file at 3 replicas');
  const perGiB = (s: number) => s / (replicaMiB / 1024);
  const storageCpu = perGiB(cpu(STORAGE) - cpuBefore.storage);
  const aliceCpu = perGiB(cpu(['alice']) - cpuBefore.alice);
  emit(`${REPLICATE}.1GiB`, replicaMiB / replicate, 'MiB/s');
  emit(`${REPLICATE}.1GiB.seconds`, replicate, 's');
  emit(`${REPLICATE}.cpu_per_GiB`, storageCpu, 'CPU s');
  log(
    `  ${replicaMiB.toFixed(0)} MiB of replicas written in ${replicate.toFixed(1)} s (load ${load()}); ` +
      `CPU s per GiB of replicas: storage peers ${storageCpu.toFixed(2)}, sharer ${aliceCpu.toFixed(2)}`,
  );
  if (process.env.BENCH_STORAGE_ONLY !== 'replicate') await repairUpdatesLocks();
} finally {
  for (const child of peers.values()) child.kill('SIGTERM');
  await Promise.all(
    [...peers.values()].map((c) =>
      c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => c.once('exit', r)),
    ),
  );
  await tracker.stop();
  tmp.remove();
}
