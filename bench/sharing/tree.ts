// tree.100k (issue 17): a folder of 100,000 files in nested folders (BENCH_TREE_FILES to change
// it), 0–8 KiB each. Prints JSON lines:
//   tree.100k.hash.s / .files_per_s   createTreeManifest in this process (one worker per core)
//   tree.100k.hash.cpu_s / .cores     CPU-seconds of all its threads, and CPU ÷ wall: how many
//                                     cores the hashing kept busy (≤ tree.cores)
//   tree.100k.share.s / .files_per_s  `upload_file <dir> <group>` on a peer daemon: walk, hash,
//                                     the manifest's pages up one by one, the share recorded
//   tree.100k.pages                   pages the manifest took (each ≤ 1 MiB), and its root's bytes
//   tree.100k.list_files.ms           `list_files <group> <name>` of it (pages fetched, checked)
//   tree.100k.download.s / .files_per_s / .cpu_s_per_1000_files
//                                     a second peer downloads the whole tree from the first:
//                                     seconds from download_file to completed, and the
//                                     downloader's CPU-seconds per 1,000 files (BENCH_TREE_DOWNLOAD=0
//                                     skips it)
// with the load average beside them: on a shared machine the CPU figures move least.
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { createTreeManifest } from '../../src/core/tree-manifest.js';
import { callDaemon } from '../../src/peer/control/client.js';
import { pagesOf } from '../../src/protocol/manifest-pages.js';
import { cpuSeconds } from '../lib/cpu.js';
import { spawnPeer } from '../lib/peer-process.js';
import { makeTempDir } from '../lib/temp-dir.js';
import { spawnTracker } from '../lib/tracker-process.js';

const FILES = Number(process.env.BENCH_TREE_FILES ?? 100_000);
const NAME = FILES === 100_000 ? 'tree.100k' : `tree.${FILES}`;
const GROUP = 'bench';
const DOWNLOAD = process.env.BENCH_TREE_DOWNLOAD !== '0';

const log = (s: string) => process.stderr.write(`${s}\n`);
const emit = (name: string, value: number, unit: string, extra: Record<string, unknown> = {}) =>
  process.stdout.write(
    `${JSON.stringify({ name: `${NAME}.${name}`, value: Number(value.toFixed(3)), unit, load: loadavg()[0], ...extra })}\n`,
  );

const tmp = makeTempDir('coterie-bench-tree-');
const dir = (n: string) => join(tmp.path, n);
const root = dir('shared');
const children: ChildProcess[] = [];

/** FILES files, 0–8 KiB of varied bytes each, 100 per folder, folders two deep. */
function writeTree(): number {
  let bytes = 0;
  let seed = 1;
  const block = Buffer.alloc(8192);
  for (let i = 0; i < FILES; i++) {
    const folder = join(
      root,
      `a${String(Math.floor(i / 10_000)).padStart(2, '0')}`,
      `b${String(Math.floor(i / 100) % 100).padStart(2, '0')}`,
    );
    if (i % 100 === 0) mkdirSync(folder, { recursive: true });
    seed = (seed * 1_103_515_245 + 12_345) >>> 0;
    const size = seed % 8192;
    block.writeUInt32BE(i, 0);
    writeFileSync(join(folder, `f${String(i).padStart(6, '0')}.dat`), block.subarray(0, size));
    bytes += size;
  }
  return bytes;
}

async function startPeer(n: string, trackerUrl: string): Promise<ChildProcess> {
  const child = await spawnPeer(n, ['--data-dir', dir(n), '--tracker', trackerUrl, '--no-shell']);
  children.push(child);
  return child;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * `bob` joins the group and downloads the whole tree from alice: seconds from download_file to
 * completed, and bob's CPU-seconds meanwhile. Polled twice a second, so that the polling costs
 * the downloader little of the CPU measured.
 */
async function downloadTree(trackerUrl: string, alice: Call): Promise<{ s: number; cpuS: number }> {
  const child = await startPeer('bob', trackerUrl);
  const bob: Call = (command, ...args) => callDaemon(dir('bob'), command, args);
  await bob('create_user', 'bob', 'password-of-bob');
  await bob('login', 'bob', 'password-of-bob');
  await bob('join_group', GROUP);
  await alice('accept_request', GROUP, 'bob');
  const dest = dir('bob-tree');
  const cpu0 = cpuSeconds(child.pid!);
  const t0 = performance.now();
  await bob('download_file', GROUP, 'shared', dest);
  for (;;) {
    if (performance.now() - t0 > 3_600_000) throw new Error('the tree not downloaded in an hour');
    const { downloads } = (await bob('show_downloads')) as {
      downloads: { dest: string; state: string; error: string | null; doneBytes: number }[];
    };
    const row = downloads.find((r) => r.dest === dest);
    if (row?.state === 'failed') throw new Error(`download failed: ${row.error}`);
    if (row?.state === 'completed') break;
    await sleep(500);
  }
  return { s: seconds(t0), cpuS: cpuSeconds(child.pid!) - cpu0 };
}

type Call = (command: string, ...args: string[]) => Promise<unknown>;

const seconds = (t0: number) => (performance.now() - t0) / 1000;

try {
  log(`writing ${FILES} files…`);
  const bytes = writeTree();
  log(`${FILES} files, ${(bytes / 1024 ** 2).toFixed(1)} MiB`);

  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const { manifest } = await createTreeManifest(root);
  const hashS = seconds(t0);
  const cpu = process.cpuUsage(cpu0);
  const cpuS = (cpu.user + cpu.system) / 1e6;
  emit('hash.s', hashS, 's');
  emit('hash.files_per_s', FILES / hashS, 'files/s');
  emit('hash.cpu_s', cpuS, 'cpu-s');
  emit('hash.cores', cpuS / hashS, 'cores', { available: availableParallelism() });
  const { root: rootJson, pages } = pagesOf(manifest);
  emit('pages', pages.length, 'pages', {
    rootBytes: JSON.stringify(rootJson).length,
    largestPageBytes: Math.max(...pages.map((p) => JSON.stringify(p.page).length)),
    pieces: manifest.pieces.length,
  });

  const tracker = await spawnTracker(dir('tracker'), ['--scrypt-log-n', '10'], {
    echoStderr: true,
    startMs: 60_000,
  });
  await startPeer('alice', tracker.url);
  const run = <T>(command: string, ...args: string[]) =>
    callDaemon(dir('alice'), command, args) as Promise<T>;
  await run('create_user', 'alice', 'password-of-alice');
  await run('login', 'alice', 'password-of-alice');
  await run('create_group', GROUP);

  const t1 = performance.now();
  await run('upload_file', root, GROUP);
  const shareS = seconds(t1);
  emit('share.s', shareS, 's');
  emit('share.files_per_s', FILES / shareS, 'files/s');

  const lists: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t2 = performance.now();
    const tree = await run<{ files: unknown[] }>('list_files', GROUP, 'shared');
    lists.push(performance.now() - t2);
    if (tree.files.length !== FILES)
      throw new Error(`list_files gave ${tree.files.length} files, not ${FILES}`);
  }
  emit('list_files.ms', [...lists].sort((a, b) => a - b)[1]!, 'ms', {
    runs: lists.map((x) => Math.round(x)),
  });

  if (DOWNLOAD) {
    log(`downloading the ${FILES} files on a second peer…`);
    const got = await downloadTree(tracker.url, run);
    emit('download.s', got.s, 's', { files: FILES });
    emit('download.files_per_s', FILES / got.s, 'files/s');
    emit('download.cpu_s_per_1000_files', (got.cpuS * 1000) / FILES, 'cpu-s', { cpu_s: got.cpuS });
  }
  await tracker.stop();
} finally {
  for (const c of children) c.kill('SIGKILL');
  tmp.remove();
}
