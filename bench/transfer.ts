// transfer.*: a 1 GiB random file downloaded by one downloader process from
// three (and from one) seeder processes on loopback, TLS 1.3 on, default
// settings; timed from the downloader's start to the verified file at its
// destination (process start to exit, like the aria2c reference). In the same
// run, aria2c downloads the same file from aria2c seeders through an
// opentracker (../shared/anchors/bittorrent-swarm.sh) for the ratio, one aria2c run after each
// round of ours, so that both sides of the ratio see the same drift of the machine. Then a
// sparse 10 GiB file, for the downloader's peak RSS, when the disk has room. Each round also
// writes the 1 GiB through the download's own disk path alone (bench/_disk-ceiling.ts:
// transfer.disk_only.1GiB, O_DIRECT writes, fsync and rename, no network), the most this disk
// lets any durable download reach; each download's tail_s is what followed its last verified
// piece (that piece's write, the fsync, the rename).
//
// Environment: RUNS (default 5: this 2-core VM varies ±20 % run to run), ARIA=0 to skip the reference, DISK=0 to
// skip the disk-only runs, BIG=0 to skip
// 10 GiB, SMALL=0 to skip 1 GiB, PLAIN=1 to add a plaintext run (the cost of TLS), BUFFERED=1 to add
// a run writing through the page cache (the cost of skipping O_DIRECT), SPARSE=1 a run and a disk-only
// run without preallocating the part file (what preallocation saves), WARM=1 a run whose downloader
// downloads the file twice and is measured on the second (transfer.warm.cpu_s_per_GiB: a running
// daemon's download, without the process's start and the compiling of its code), ONLY=3 or ONLY=1 for one
// seeder count, DL_NODE_ARGS / SEED_NODE_ARGS for node flags (profiling), SCHED='{"targetPipeMs":200}'
// for scheduler options (JSON) while tuning, CEILING=0 to skip the TLS-only ceiling
// (transfer.tls_only.3senders: Node's TLS alone from three sender processes to one receiver, the
// most this machine could move for the download before hashing and writing; each round the same
// senders then feed OpenSSL's receiver in C++, bench/fixtures/tls-native-receive.cc, for what a
// receiver outside Node would save). With the ceiling, transfer.sha256_only: SHA-256 alone in the
// download's pieces, Node's createHash and `openssl speed`, the hashing part of the downloader's CPU.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, open, rm, statfs, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { exportJWK, generateKeyPair } from 'jose';
import { createManifest } from '../src/core/manifest.js';
import { nativeSha256Pair } from '../src/peer/files/download/native.js';
import type { Manifest } from '../src/protocol/manifest.js';
import { signTicket } from '../src/protocol/tickets.js';
import { loadOrCreateIdentity } from '../src/wire/identity.js';
import { type DiskRun, diskOnlyOnce } from './_disk-ceiling.js';
import { randomFile } from './lib/random-file.js';
import { sha256Alone } from './lib/sha256-alone.js';
import { type ChildPeer, startChildPeer } from './lib/transfer-peer.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const RUNS = Number(process.env.RUNS ?? 5);
const ANCHOR = fileURLToPath(new URL('../../shared/anchors/bittorrent-swarm.sh', import.meta.url));
const ANCHOR_FALLBACK = '/work/shared/anchors/bittorrent-swarm.sh';

/** DL_NODE_ARGS / SEED_NODE_ARGS: extra node flags for a child, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof". */
const nodeArgs = (mode: 'seed' | 'download') =>
  (process.env[mode === 'download' ? 'DL_NODE_ARGS' : 'SEED_NODE_ARGS'] ?? '').split(' ').filter(Boolean);
const line = (o: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(o)}\n`);
const note = (s: string) => process.stderr.write(`note: ${s}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

interface Swarm {
  seeders: Array<{ peerId: string; address: { host: string; port: number }; score: number }>;
  /** CPU seconds the seeder processes used so far (all threads), where /proc tells; else NaN. */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

/** User + system CPU seconds of a live process, from /proc (Linux); NaN elsewhere. */
function processCpuSeconds(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): utime and stime are the 14th and 15th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return Number.NaN;
  }
}
const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;

/**
 * Whether the downloader hashes its pieces in pairs (the addon's sha256Pair): where the CPU has
 * SHA-NI and the addon lacks it, build/ predates native/sha256-pair.c (a worktree that copied an
 * old build/, an install with --ignore-scripts), and every figure here carries ~0.3 CPU-s per
 * GiB of single hashes: said on stderr, and as `hash_pairs` beside transfer.cpu_s_per_GiB.
 */
function hashPairs(): boolean {
  if (nativeSha256Pair !== undefined) return true;
  let shaNi = false;
  try {
    shaNi = process.arch === 'x64' && /\bsha_ni\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    // not Linux: nothing to say
  }
  if (shaNi)
    note(
      'this CPU has SHA-NI but build/Release/coterie_native.node has no sha256Pair: rebuild the addon (`npm run install`) or the downloader hashes one piece at a time',
    );
  return false;
}

async function startSeeders(
  dir: string,
  n: number,
  file: string,
  manifest: Manifest,
  fileId: string,
  jwks: object,
  plaintext: boolean,
): Promise<Swarm> {
  const kids: ChildPeer[] = [];
  for (let i = 0; i < n; i++) {
    const identityDir = join(dir, `seed-id-${i}`);
    kids.push(
      await startChildPeer(
        dir,
        'seed',
        { file, manifest, fileId, jwks, identityDir, plaintext },
        nodeArgs('seed'),
      ),
    );
  }
  const hellos = (await Promise.all(kids.map((k) => k.first))) as Array<{ peerId: string; port: number }>;
  return {
    seeders: hellos.map((h) => ({
      peerId: h.peerId,
      address: { host: '127.0.0.1', port: h.port },
      score: 0.5,
    })),
    cpuSeconds: () => kids.reduce((sum, k) => sum + processCpuSeconds(k.child.pid), 0),
    async stop() {
      for (const k of kids) k.child.kill('SIGTERM');
      await Promise.all(kids.map((k) => k.exited));
    },
  };
}

/** How a download runs: the defaults are TLS, O_DIRECT and a preallocated part file. */
interface DownloadMode {
  plaintext: boolean;
  directIo: boolean;
  preallocate: boolean;
  /** The downloader downloads the file once first; only the second is measured (a warm daemon). */
  warmup?: boolean;
}
const DEFAULT_MODE: DownloadMode = { plaintext: false, directIo: true, preallocate: true };

interface RunResult {
  wallSeconds: number;
  engineSeconds: number;
  /** From the last verified piece to the file at its destination: its write, the fsync, the rename. */
  tailSeconds: number;
  cpuSeconds: number;
  /** The kernel's part of cpuSeconds (socket reads, disk writes). */
  systemCpuSeconds: number;
  /** The part of cpuSeconds spent before the download began (Node's start, our modules). */
  startupCpuSeconds: number;
  /** CPU seconds of all seeders together during the run. */
  seederCpuSeconds: number;
  maxRssMiB: number;
}

async function downloadOnce(
  dir: string,
  swarm: Swarm,
  manifest: Manifest,
  fileId: string,
  ticket: string,
  identityDir: string,
  dest: string,
  mode: DownloadMode,
): Promise<RunResult> {
  await rm(dest, { force: true });
  await rm(`${dest}.part`, { force: true });
  await rm(`${dest}.part.resume`, { force: true });
  const seederCpu0 = swarm.cpuSeconds();
  const t0 = performance.now();
  const dl = await startChildPeer(
    dir,
    'download',
    {
      manifest,
      fileId,
      dest,
      seeders: swarm.seeders,
      ticket,
      identityDir,
      ...mode,
      ...(process.env.SCHED === undefined ? {} : { scheduler: JSON.parse(process.env.SCHED) }),
      events: [],
    },
    nodeArgs('download'),
  );
  // With a warm-up download first, the seeders' CPU is counted from its end.
  let seederCpuFrom = seederCpu0;
  dl.onLine((l) => {
    if (l.type === 'warm') seederCpuFrom = swarm.cpuSeconds();
  });
  const code = await dl.exited;
  let wallSeconds = (performance.now() - t0) / 1000;
  const seederCpuSeconds = swarm.cpuSeconds() - seederCpuFrom;
  const done = dl.lines.find((l) => l.type === 'completed') as
    | {
        seconds: number;
        lastVerifiedSeconds: number;
        result: { distribution: { peers: Array<{ pieces: number; finalScore: number }> } };
      }
    | undefined;
  const usage = dl.lines.find((l) => l.type === 'usage') as
    | {
        cpuSeconds: number;
        systemCpuSeconds: number;
        startupCpuSeconds: number;
        warmCpuSeconds?: number;
        maxRssMiB: number;
      }
    | undefined;
  if (code !== 0 || !done || !usage) {
    throw new Error(`download failed: ${JSON.stringify(dl.lines.at(-2) ?? dl.lines.at(-1))}`);
  }
  // The second download alone: timed in process, its CPU from the warm-up's end.
  const warmCpu = usage.warmCpuSeconds;
  if (warmCpu !== undefined) wallSeconds = done.seconds;
  // The seeds' chunk-assignment analysis: pieces per seeder and the score each ended with.
  const spread = done.result.distribution.peers.map((p) => `${p.pieces}@${p.finalScore}`).join(' ');
  process.stderr.write(`  pieces@score per seeder: ${spread}\n`);
  return {
    wallSeconds,
    engineSeconds: done.seconds,
    tailSeconds: done.seconds - done.lastVerifiedSeconds,
    cpuSeconds: usage.cpuSeconds - (warmCpu ?? 0),
    systemCpuSeconds: usage.systemCpuSeconds,
    startupCpuSeconds: warmCpu === undefined ? usage.startupCpuSeconds : 0,
    seederCpuSeconds,
    maxRssMiB: usage.maxRssMiB,
  };
}

const TLS_PIPE = fileURLToPath(new URL('./fixtures/tls-pipe.mjs', import.meta.url));
const TLS_NATIVE_SOURCE = fileURLToPath(new URL('./fixtures/tls-native-receive.cc', import.meta.url));

/** Builds the OpenSSL receiver with the machine's g++ into `dir`; a note and null when it cannot. */
function buildNativeReceiver(dir: string): string | null {
  const out = join(dir, 'tls-native-receive');
  const r = spawnSync('g++', ['-O2', '-o', out, TLS_NATIVE_SOURCE, '-lssl', '-lcrypto', '-pthread'], {
    encoding: 'utf8',
  });
  if (r.status === 0) return out;
  note(
    `no OpenSSL receiver for the ceiling (g++ and libssl-dev needed): ${(r.stderr || String(r.error)).split('\n')[0]}`,
  );
  return null;
}

interface Ceiling {
  mibps: number;
  runs: number[];
  /** Receiver and senders together. */
  cpuSecondsPerGiB: number;
  receiverCpuSecondsPerGiB: number;
  /** The same senders to OpenSSL in C++ instead of Node's receiver, when it could be built. */
  native: { mibps: number; receiverCpuSecondsPerGiB: number } | null;
}

/**
 * The machine's ceiling for this download: Node's TLS alone moving 1 GiB from three sender
 * processes to one receiver (no hashing, no disk, no protocol), median MiB/s over RUNS. Each
 * round the same senders then serve OpenSSL's own receiver (C++, no Node), to tell what a
 * receiver outside Node would save.
 */
async function tlsOnlyCeiling(root: string, senders: number): Promise<Ceiling> {
  const nativeReceiver = buildNativeReceiver(root);
  const runs: number[] = [];
  const cpu: number[] = [];
  const receiverCpu: number[] = [];
  const nativeRuns: number[] = [];
  const nativeCpu: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const procs = Array.from({ length: senders }, (_, k) =>
      spawn(process.execPath, [TLS_PIPE, 'send', join(root, `seed-id-${k}`), String(GiB / senders)], {
        stdio: ['ignore', 'pipe', 'inherit'],
      }),
    );
    const sendersCpu = () => procs.reduce((sum, p) => sum + processCpuSeconds(p.pid), 0);
    try {
      const ports = await Promise.all(
        procs.map(
          (p) =>
            new Promise<number>((resolve, reject) => {
              createInterface({ input: p.stdout! }).once('line', (l) =>
                resolve(JSON.parse(l).port as number),
              );
              p.once('exit', (code) => reject(new Error(`tls-pipe sender exited with ${code}`)));
            }),
        ),
      );
      const receive = (command: string, args: string[]) => {
        const r = spawnSync(command, args, { encoding: 'utf8', timeout: 120_000 });
        return JSON.parse(r.stdout.trim()) as { bytes: number; seconds: number; cpuSeconds: number };
      };
      const out = receive(process.execPath, [TLS_PIPE, 'receive', join(root, 'dl-id'), ports.join(',')]);
      runs.push(round(out.bytes / MiB / out.seconds));
      // Receiver and senders together (the senders' start-up included, a few tens of ms each).
      cpu.push((out.cpuSeconds + sendersCpu()) / (out.bytes / GiB));
      receiverCpu.push(out.cpuSeconds / (out.bytes / GiB));
      if (nativeReceiver !== null) {
        const native = receive(nativeReceiver, ports.map(String));
        nativeRuns.push(round(native.bytes / MiB / native.seconds));
        nativeCpu.push(native.cpuSeconds / (native.bytes / GiB));
      }
    } finally {
      for (const p of procs) p.kill('SIGTERM');
    }
  }
  return {
    mibps: median(runs),
    runs,
    cpuSecondsPerGiB: round(median(cpu), 2),
    receiverCpuSecondsPerGiB: round(median(receiverCpu), 2),
    native:
      nativeReceiver === null
        ? null
        : { mibps: median(nativeRuns), receiverCpuSecondsPerGiB: round(median(nativeCpu), 2) },
  };
}

/** The aria2c reference: median end-to-end MiB/s over `runs` per seeder count, or a note. */
function aria2Reference(payload: string, runs: number, seeds: number[]): Map<number, number> | string {
  const script = existsSync(ANCHOR) ? ANCHOR : ANCHOR_FALLBACK;
  if (!existsSync(script)) return `anchor script not found at ${ANCHOR}`;
  const need = ['aria2c', 'opentracker', 'mktorrent'];
  const missing = () => need.filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
  if (missing().length > 0) {
    note(`installing ${missing().join(', ')} for the aria2c reference`);
    spawnSync('sh', ['-c', 'timeout 300 apt-get install -y opentracker mktorrent aria2 >/dev/null 2>&1'], {
      stdio: 'inherit',
    });
    if (missing().length > 0)
      return `cannot install ${missing().join(', ')}: no aria2c reference in this run`;
  }
  const r = spawnSync('bash', [script], {
    env: { ...process.env, RUNS: String(runs), SEEDS: seeds.join(' '), KEEP_PAYLOAD: payload },
    encoding: 'utf8',
    timeout: 15 * 60 * 1000,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const out = new Map<number, number>();
  for (const l of (r.stdout ?? '').split('\n')) {
    const m = /^aria2c leecher <- (\d+) \S+ seeder\(s\).*?: median ([\d.]+) MiB\/s/.exec(l);
    if (m) out.set(Number(m[1]), Number(m[2]));
    if (l.startsWith('aria2c leecher')) process.stderr.write(`${l}\n`);
  }
  return out.size > 0 ? out : `aria2c reference produced no figure (exit ${r.status})`;
}

async function main(): Promise<void> {
  const pairs = hashPairs();
  const root = await mkdtemp(join(tmpdir(), 'coterie-bench-transfer-'));
  try {
    const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: 'bench', alg: 'EdDSA', use: 'sig' }] };
    const dlIdentityDir = join(root, 'dl-id');
    const dl = await loadOrCreateIdentity(dlIdentityDir);
    const ticketFor = (file: string) =>
      signTicket(
        { user: 'bench', group: 'bench', peer: dl.peerId, file, ttlSeconds: 3600 },
        {
          privateKey,
          kid: 'bench',
        },
      );

    // ---- 1 GiB ------------------------------------------------------------
    const payload = join(root, 'payload-1GiB.bin');
    await randomFile(payload, GiB);
    const { manifest, fileId } = await createManifest(payload);
    const ticket = await ticketFor(fileId);
    const dest = join(root, 'out', 'payload.bin');
    await mkdir(join(root, 'out'));

    const results = new Map<string, RunResult[]>();
    // The headline downloads (against aria2c), then the variants an environment flag adds (3 seeders).
    const variant = (flag: string, name: string, change: Partial<DownloadMode>) =>
      process.env[flag] === '1'
        ? [{ name, seeders: 3, mode: { ...DEFAULT_MODE, ...change }, reference: false }]
        : [];
    const configs: Array<{ name: string; seeders: number; mode: DownloadMode; reference: boolean }> = [
      { name: 'transfer.1GiB.3seeders', seeders: 3, mode: DEFAULT_MODE, reference: true },
      { name: 'transfer.1GiB.1seeder', seeders: 1, mode: DEFAULT_MODE, reference: true },
      ...variant('PLAIN', 'transfer.1GiB.3seeders.plaintext', { plaintext: true }),
      ...variant('BUFFERED', 'transfer.1GiB.3seeders.buffered', { directIo: false }),
      ...variant('SPARSE', 'transfer.1GiB.3seeders.sparse', { preallocate: false }),
      ...variant('WARM', 'transfer.1GiB.3seeders.warm', { warmup: true }),
    ];
    const diskModes = [
      { name: 'transfer.disk_only.1GiB', preallocate: true },
      ...(process.env.SPARSE === '1' ? [{ name: 'transfer.disk_only.1GiB.sparse', preallocate: false }] : []),
    ];
    // Rounds: each configuration's download once, then aria2c's once, RUNS times over. This VM drifts
    // by ±20 % within minutes; interleaved, both sides of the ratio see the same drift.
    const wanted = (process.env.SMALL === '0' ? [] : configs).filter(
      (c) => process.env.ONLY === undefined || String(c.seeders) === process.env.ONLY,
    );
    const ariaWanted = process.env.ARIA !== '0' && wanted.length > 0;
    const ariaRounds: Array<Map<number, number>> = [];
    const diskRuns = new Map<string, DiskRun[]>(diskModes.map((d) => [d.name, []]));
    let ariaNote: string | undefined = ariaWanted ? undefined : 'skipped (ARIA=0)';
    const swarms = new Map<string, Swarm>();
    try {
      for (const c of wanted) {
        swarms.set(
          c.name,
          await startSeeders(root, c.seeders, payload, manifest, fileId, jwks, c.mode.plaintext),
        );
        results.set(c.name, []);
      }
      for (let i = 0; i < RUNS; i++) {
        for (const c of wanted) {
          const r = await downloadOnce(
            root,
            swarms.get(c.name)!,
            manifest,
            fileId,
            ticket,
            dlIdentityDir,
            dest,
            c.mode,
          );
          process.stderr.write(
            `${c.name} run ${i + 1}: ${round(1024 / r.wallSeconds)} MiB/s (wall ${round(r.wallSeconds, 2)} s, engine ${round(r.engineSeconds, 2)} s, tail ${round(r.tailSeconds, 2)} s), cpu ${round(r.cpuSeconds, 2)} s (system ${round(r.systemCpuSeconds, 2)} s, start-up ${round(r.startupCpuSeconds, 2)} s; seeders ${round(r.seederCpuSeconds, 2)} s), peak RSS ${round(r.maxRssMiB)} MiB\n`,
          );
          results.get(c.name)!.push(r);
        }
        if (ariaNote === undefined) {
          const a = aria2Reference(payload, 1, [...new Set(wanted.map((c) => c.seeders))]);
          if (typeof a === 'string') ariaNote = a;
          else ariaRounds.push(a);
        }
        // With SPARSE=1, ABBA order: the first disk run after aria2c's met a busier disk than the second.
        const diskRound = i % 2 === 0 ? diskModes : [...diskModes].reverse();
        for (const disk of process.env.DISK !== '0' && wanted.length > 0 ? diskRound : []) {
          const d = await diskOnlyOnce(manifest, fileId, dest, disk.preallocate);
          process.stderr.write(
            `${disk.name} run ${i + 1}: ${round(1024 / d.seconds)} MiB/s (${round(d.seconds, 2)} s, of which fsync and rename ${round(d.flushSeconds, 2)} s)\n`,
          );
          diskRuns.get(disk.name)!.push(d);
        }
      }
    } finally {
      for (const swarm of swarms.values()) await swarm.stop();
    }
    await rm(dest, { force: true });

    // Same identities as the swarm's (seed-id-N, dl-id), so the same certificates and ciphers.
    const ceiling =
      process.env.CEILING === '0' || process.env.SMALL === '0' ? null : await tlsOnlyCeiling(root, 3);
    const aria: Map<number, number> | string =
      ariaNote ??
      new Map(
        [1, 3].flatMap((n) => {
          const v = ariaRounds.map((r) => r.get(n)).filter((x): x is number => x !== undefined);
          return v.length > 0 ? [[n, median(v)] as const] : [];
        }),
      );
    if (typeof aria === 'string') note(aria);
    for (const c of configs) {
      const runs = results.get(c.name);
      if (!runs) continue;
      const value = round(1024 / median(runs.map((r) => r.wallSeconds)));
      const ref = typeof aria === 'string' || !c.reference ? undefined : aria.get(c.seeders);
      line({
        name: c.name,
        value,
        unit: 'MiB/s',
        ...(ref === undefined ? {} : { ref: 'aria2c', ratio: round(value / ref, 2) }),
        runs: runs.map((r) => round(1024 / r.wallSeconds)),
        // The same downloads timed inside the downloader, from download() to the verified file at its
        // destination, as the peer daemon runs them (no process start, ~0.15 s here).
        in_process: round(1024 / median(runs.map((r) => r.engineSeconds))),
        tail_s: round(median(runs.map((r) => r.tailSeconds)), 2),
      });
    }
    for (const [name, runs] of diskRuns) {
      if (runs.length === 0) continue;
      line({
        name,
        value: round(1024 / median(runs.map((d) => d.seconds))),
        unit: 'MiB/s',
        runs: runs.map((d) => round(1024 / d.seconds)),
        // The final fsync and rename: on a VM, the host writing back what its cache took.
        flush_s: round(median(runs.map((d) => d.flushSeconds)), 2),
      });
    }
    const all3 = results.get('transfer.1GiB.3seeders') ?? [...results.values()][0];
    if (all3) {
      line({
        name: 'transfer.peak_rss',
        value: round(Math.max(...all3.map((r) => r.maxRssMiB))),
        unit: 'MiB',
      });
      line({
        name: 'transfer.cpu_s_per_GiB',
        value: round(median(all3.map((r) => r.cpuSeconds)), 2),
        unit: 's',
        system: round(median(all3.map((r) => r.systemCpuSeconds)), 2),
        startup: round(median(all3.map((r) => r.startupCpuSeconds)), 2),
        hash_pairs: pairs,
      });
      // Where the rest of the machine's two cores went: the seeders' share of the same runs.
      line({
        name: 'transfer.seeders_cpu_s_per_GiB',
        value: round(median(all3.map((r) => r.seederCpuSeconds)), 2),
        unit: 's',
      });
    }
    const warm = results.get('transfer.1GiB.3seeders.warm');
    if (warm) {
      // A running daemon's download: no process start, code compiled, workers up (WARM=1).
      line({
        name: 'transfer.warm.cpu_s_per_GiB',
        value: round(median(warm.map((r) => r.cpuSeconds)), 2),
        unit: 's',
        seeders: round(median(warm.map((r) => r.seederCpuSeconds)), 2),
      });
    }
    if (ceiling !== null) {
      const ours = results.get('transfer.1GiB.3seeders');
      line({
        name: 'transfer.tls_only.3senders',
        value: ceiling.mibps,
        unit: 'MiB/s',
        // How much of what TLS alone moves here the whole download (hash, disk, protocol) keeps.
        ...(ours
          ? { share_kept: round(round(1024 / median(ours.map((r) => r.wallSeconds))) / ceiling.mibps, 2) }
          : {}),
        runs: ceiling.runs,
      });
      // Its CPU per GiB, receiver and senders: set against transfer.cpu_s_per_GiB + seeders_cpu_s_per_GiB.
      line({ name: 'transfer.tls_only.cpu_s_per_GiB', value: ceiling.cpuSecondsPerGiB, unit: 's' });
      // The receiver alone: Node's, and OpenSSL's in C++ from the same senders (what a native addon
      // owning the downloader's sockets could save at most; against transfer.cpu_s_per_GiB).
      line({
        name: 'transfer.tls_only.receiver_cpu_s_per_GiB',
        value: ceiling.receiverCpuSecondsPerGiB,
        unit: 's',
        ...(ceiling.native ? { openssl: ceiling.native.receiverCpuSecondsPerGiB } : {}),
      });
      if (ceiling.native)
        line({ name: 'transfer.tls_only.openssl_receiver', value: ceiling.native.mibps, unit: 'MiB/s' });
      // Hashing alone, in the download's pieces: the downloader's other cryptography besides TLS.
      const sha = await sha256Alone(manifest.pieceSize);
      line({
        name: 'transfer.sha256_only',
        value: round(sha.node.mibps),
        unit: 'MiB/s',
        cpu_s_per_GiB: round(sha.node.cpuSecondsPerGiB, 2),
        ...(sha.openssl
          ? {
              openssl: round(sha.openssl.mibps),
              openssl_cpu_s_per_GiB: round(sha.openssl.cpuSecondsPerGiB, 2),
            }
          : {}),
        ...(sha.pairCpuSecondsPerGiB === null
          ? {}
          : { pairs_cpu_s_per_GiB: round(sha.pairCpuSecondsPerGiB, 2) }),
      });
    }
    if (typeof aria !== 'string') {
      for (const [n, v] of aria)
        line({ name: `transfer.1GiB.${n}seeder${n > 1 ? 's' : ''}.aria2c`, value: v, unit: 'MiB/s' });
    }
    await rm(payload, { force: true });

    // ---- 10 GiB, peak RSS ------------------------------------------------------
    if (process.env.BIG === '0') {
      note('transfer.10GiB.peak_rss skipped (BIG=0)');
      return;
    }
    const fs = await statfs(root);
    const free = fs.bavail * fs.bsize;
    // The source is sparse; the destination takes 10 GiB, plus room to spare.
    if (free < 14 * GiB) {
      note(`transfer.10GiB.peak_rss skipped: ${round(free / GiB)} GiB free, need 14`);
      return;
    }
    const big = join(root, 'sparse-10GiB.bin');
    await open(big, 'w').then((h) => h.close());
    await truncate(big, 10 * GiB);
    const bigM = await createManifest(big);
    const bigTicket = await ticketFor(bigM.fileId);
    const swarm = await startSeeders(root, 3, big, bigM.manifest, bigM.fileId, jwks, false);
    try {
      const r = await downloadOnce(
        root,
        swarm,
        bigM.manifest,
        bigM.fileId,
        bigTicket,
        dlIdentityDir,
        dest,
        DEFAULT_MODE,
      );
      process.stderr.write(
        `10 GiB: ${round(10240 / r.wallSeconds)} MiB/s, peak RSS ${round(r.maxRssMiB)} MiB\n`,
      );
      line({
        name: 'transfer.10GiB.peak_rss',
        value: round(r.maxRssMiB),
        unit: 'MiB',
        MiBps: round(10240 / r.wallSeconds),
      });
    } finally {
      await swarm.stop();
      await rm(dest, { force: true });
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

await main();
