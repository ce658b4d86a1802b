// swarm.16x256MiB (issue 17): one seeder whose upload is capped at 40 MiB/s (its
// --upload-limit, counted at the socket), sixteen downloaders of one 256 MiB file starting
// together. The physical bound is the seeder uploading each byte once: 256 / 40 = 6.4 s.
// Figures: the time for all sixteen (target ≤ 8.3 s = 1.3 × 6.4), the seeder's upload bytes
// over the file size (target ≤ 1.5; counted by a TCP relay in front of the seeder), and beside
// them one downloader alone under the same cap, measured apart: it runs first and is stopped
// before the sixteen start, so they do not fetch from a complete copy the bound does not count.
// SWARM_DOWNLOADERS changes the sixteen.
// Cold and warm: the sixteen daemons first fetch another file of the same size together
// (swarm.NxM.cold, the first transfer of seventeen fresh processes), then the measured one.
// Measured 2026-12-07: of a cold swarm's 14-19 s, about 5 s was V8 compiling the same ~250
// functions in each of the seventeen processes (11 % of the CPU in the compiler, 15 % in the
// interpreter's built-ins, with the machine busy and 112 MiB/s moved in all over the first 8 s,
// 600+ after). A daemon runs for days; its swarms after the first are the figure. SWARM_COLD=0
// skips the cold swarm (then the figure is the cold one).
// Where the time goes (swarm.NxM.where): the CPU-seconds of every peer process and the tracker
// over the swarm phase (and the bench's own, the relay), per GiB downloaded, and that total over
// the cores beside the time (the CPU-bound time: what the machine could do at best); the bytes
// each downloader got from the seeder and from the other downloaders, the bytes received beyond
// the file (duplicates, pieces got twice), and how long downloaders sat without progress
// (sampled with the polls, at the engine's 250 ms progress reports).
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { cpuSeconds, wakeCounts } from '../lib/cpu.js';
import { countingRelay, sparseFile, startPeerSwarm, stopBenchPeer } from '../lib/peer-swarm.js';
import { makeTempDir } from '../lib/temp-dir.js';

const MiB = 1024 * 1024;
// SWARM_MIB and SWARM_CAP_MIB shrink the run on a busy machine (the names keep the sizes).
const FILE_MIB = Number(process.env.SWARM_MIB ?? 256);
const CAP_MIB = Number(process.env.SWARM_CAP_MIB ?? 40);
const FILE_BYTES = FILE_MIB * MiB;
const CAP = `${CAP_MIB}MiB/s`;
const BOUND_S = FILE_BYTES / (CAP_MIB * MiB);
const DOWNLOADERS = Number(process.env.SWARM_DOWNLOADERS ?? 16);
const COLD_FIRST = process.env.SWARM_COLD !== '0';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Row {
  dest: string;
  state: string;
  doneBytes: number;
  error: string | null;
  endedAt: number | null;
  contributions?: Array<{ userId: string | null; pieces: number; bytes: number }>;
}
const GiB = 1024 * MiB;
/** The engine reports progress every 250 ms; a longer gap without progress than two is idle. */
const REPORT_MS = 250;
const IDLE_GAP_MS = 2 * REPORT_MS;
/**
 * How often each downloader is asked for its progress. A show_downloads is a control call (an
 * HTTP request, a peer.db read): sixteen peers every 50 ms made the bench a visible share of the
 * peers' CPU (about 5 % of the downloaders' profile at 16 × 256 MiB) on a CPU-bound swarm. The
 * time comes from the daemons' `endedAt`, so polling at the progress interval loses nothing.
 */
const POLL_MS = REPORT_MS;
const round = (x: number, digits = 2) => Number(x.toFixed(digits));

const tmp = makeTempDir('coterie-bench-swarm-');
let relay: Awaited<ReturnType<typeof countingRelay>> | undefined;
const names = ['seeder', 'alone', ...Array.from({ length: DOWNLOADERS }, (_, i) => `d${i + 1}`)];
const swarm = await startPeerSwarm(
  tmp.path,
  'bench',
  names,
  (n) => (n === 'seeder' ? ['--host', '127.0.0.2', '--advertise', '127.0.0.3', '--upload-limit', CAP] : []),
  async ([seeder]) => {
    relay = await countingRelay('127.0.0.3', '127.0.0.2', seeder!.port);
  },
);
try {
  const [seeder, alone, ...downloaders] = swarm.peers;
  const file = join(tmp.path, 'files', 'release.bin');
  mkdirSync(join(tmp.path, 'files'), { recursive: true });
  mkdirSync(join(tmp.path, 'dl'), { recursive: true });
  sparseFile(file, FILE_BYTES);
  await seeder!.call('upload_file', file, 'bench');

  /** Starts each peer's download at once; seconds until every one completed, and the relay's bytes. */
  const fetch = async (peers: typeof downloaders, name: string) => {
    const from = relay!.toClients();
    // Every process of the swarm (the seeder, the downloaders, the tracker), and the bench's own
    // (the relay and the polls): CPU-seconds over this phase.
    const pids = [...swarm.peers.filter((p) => p.child.exitCode === null).map((p) => p.child.pid!)];
    const seederPid = swarm.peers[0]!.child.pid!;
    const trackerPid = swarm.tracker.proc.pid!;
    const cpuOf = () => {
      const counts = pids.map(wakeCounts);
      const sum = (k: keyof (typeof counts)[number]) => counts.reduce((s, c) => s + c[k], 0);
      return {
        peers: pids.reduce((s, pid) => s + cpuSeconds(pid), 0),
        seeder: cpuSeconds(seederPid),
        syscalls: sum('syscalls'),
        wakeups: sum('wakeups'),
        faults: sum('faults'),
        tracker: cpuSeconds(trackerPid),
        bench: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
      };
    };
    const cpu0 = cpuOf();
    // How long each downloader went without progress between two polls (not done yet).
    const idleMs = new Map(peers.map((p) => [p, 0]));
    const t0 = performance.now();
    const started = Date.now();
    const lastDone = new Map(peers.map((p) => [p, { bytes: 0, at: t0 }]));
    const dests = new Map(peers.map((p) => [p, join(tmp.path, 'dl', `${p.name}-${name}`)]));
    await Promise.all(peers.map((p) => p.call('download_file', 'bench', name, dests.get(p)!)));
    const pending = new Set(peers);
    /** Dev aid: SWARM_TIMELINE=PREFIX writes each phase's polls ([ms, peer, bytes done]) to PREFIX-NAME.json. */
    const timeline: [number, string, number][] = [];
    const rows = new Map<(typeof peers)[number], Row>();
    const deadline = t0 + 300_000;
    while (pending.size > 0) {
      if (performance.now() > deadline) throw new Error(`${pending.size} downloads not done in 300 s`);
      // All at once: one after the other, a round takes sixteen calls' time on a loaded machine,
      // and every peer would look idle for that long.
      const polled = [...pending];
      const lists = await Promise.all(polled.map((p) => p.call<{ downloads: Row[] }>('show_downloads')));
      for (const [k, p] of polled.entries()) {
        const row = lists[k]!.downloads.find((r) => r.dest === dests.get(p));
        if (row?.state === 'failed') throw new Error(`${p.name}: ${row.error}`);
        // A gap between two moves of doneBytes longer than two progress reports (250 ms each)
        // counts as idle beyond the one report it would take anyway.
        const now = performance.now();
        timeline.push([Math.round(now - t0), p.name, row?.doneBytes ?? 0]);
        const last = lastDone.get(p)!;
        if (row !== undefined && row.doneBytes !== last.bytes) {
          const gap = now - last.at;
          if (gap > IDLE_GAP_MS) idleMs.set(p, idleMs.get(p)! + gap - REPORT_MS);
          lastDone.set(p, { bytes: row.doneBytes, at: now });
        }
        if (row?.state === 'completed') {
          pending.delete(p);
          rows.set(p, row);
        }
      }
      await sleep(POLL_MS);
    }
    // The daemons' own end times: the polls are too seldom to time the end by.
    const seconds = (Math.max(...[...rows.values()].map((r) => r.endedAt ?? Date.now())) - started) / 1000;
    const cpu1 = cpuOf();
    if (process.env.SWARM_TIMELINE !== undefined)
      writeFileSync(`${process.env.SWARM_TIMELINE}-${name}.json`, JSON.stringify(timeline));
    return {
      seconds,
      uploaded: relay!.toClients() - from,
      cpu: {
        peers: cpu1.peers - cpu0.peers,
        seeder: cpu1.seeder - cpu0.seeder,
        tracker: cpu1.tracker - cpu0.tracker,
        bench: cpu1.bench - cpu0.bench,
        syscalls: cpu1.syscalls - cpu0.syscalls,
        wakeups: cpu1.wakeups - cpu0.wakeups,
        faults: cpu1.faults - cpu0.faults,
      },
      rows,
      idleMs,
    };
  };
  /** Where the time of a phase went (see the head of this file). */
  const where = (name: string, r: Awaited<ReturnType<typeof fetch>>, peers: typeof downloaders) => {
    const gib = (peers.length * FILE_BYTES) / GiB;
    const total = r.cpu.peers + r.cpu.tracker + r.cpu.bench;
    let fromSeeder = 0;
    let fromOthers = 0;
    for (const p of peers) {
      for (const c of r.rows.get(p)?.contributions ?? []) {
        if (c.userId === 'seeder') fromSeeder += c.bytes;
        else fromOthers += c.bytes;
      }
    }
    const idle = peers.map((p) => r.idleMs.get(p)! / 1000);
    return {
      name,
      value: round(total / availableParallelism()),
      unit: 'CPU-bound s',
      seconds: round(r.seconds),
      cores: availableParallelism(),
      cpu_s: { peers: round(r.cpu.peers), tracker: round(r.cpu.tracker), bench_relay: round(r.cpu.bench) },
      cpu_s_per_gib: round(total / gib),
      // The peers' share split: the seeder's, and the downloaders' (each byte they serve one
      // another is read and encrypted by one and decrypted, hashed and written by another).
      seeder_cpu_s_per_gib: round(r.cpu.seeder / gib),
      downloaders_cpu_s_per_gib: round((r.cpu.peers - r.cpu.seeder) / gib),
      // The peers' read/write system calls and wake-ups per MiB downloaded: batching, or its lack.
      syscalls_per_mib: round(r.cpu.syscalls / (gib * 1024), 1),
      wakeups_per_mib: round(r.cpu.wakeups / (gib * 1024), 1),
      faults_per_mib: round(r.cpu.faults / (gib * 1024), 1),
      // Per downloader, in file sizes: from the seeder, from the other downloaders, beyond the file.
      from_seeder: round(fromSeeder / peers.length / FILE_BYTES, 3),
      from_others: round(fromOthers / peers.length / FILE_BYTES, 3),
      wasted: round((fromSeeder + fromOthers) / peers.length / FILE_BYTES - 1, 3),
      idle_s: { mean: round(idle.reduce((a, b) => a + b, 0) / idle.length), max: round(Math.max(...idle)) },
      load: loadavg()[0],
    };
  };

  const one = await fetch([alone!], 'release.bin');
  process.stdout.write(`${JSON.stringify(where(`swarm.1x${FILE_MIB}MiB.where`, one, [alone!]))}\n`);
  process.stdout.write(
    `${JSON.stringify({ name: `swarm.1x${FILE_MIB}MiB`, value: Number(one.seconds.toFixed(2)), unit: 's', bound_s: BOUND_S, seeder_upload_ratio: Number((one.uploaded / FILE_BYTES).toFixed(3)), note: 'one downloader alone, same seeder and cap, stopped before the swarm', load: loadavg()[0] })}\n`,
  );
  // The lone downloader holds the whole file now and would serve it: gone before the sixteen.
  await stopBenchPeer(alone!);
  const swarmName = `swarm.${DOWNLOADERS}x${FILE_MIB}MiB`;
  let coldSeconds: number | undefined;
  if (COLD_FIRST) {
    // Another file of the same size: one byte differs, so its pieces, manifest and id do.
    const first = join(tmp.path, 'files', 'first.bin');
    sparseFile(first, FILE_BYTES);
    writeFileSync(first, 'x', { flag: 'r+' });
    await seeder!.call('upload_file', first, 'bench');
    const cold = await fetch(downloaders, 'first.bin');
    coldSeconds = round(cold.seconds);
    process.stdout.write(
      `${JSON.stringify({ name: `${swarmName}.cold`, value: coldSeconds, unit: 's', bound_s: BOUND_S, seeder_upload_ratio: round(cold.uploaded / FILE_BYTES, 3), note: `the first swarm of ${DOWNLOADERS + 1} fresh daemons (their code compiling), before the measured one`, load: loadavg()[0] })}\n`,
    );
    process.stdout.write(`${JSON.stringify(where(`${swarmName}.cold.where`, cold, downloaders))}\n`);
  }
  const all = await fetch(downloaders, 'release.bin');
  process.stdout.write(
    `${JSON.stringify({ name: swarmName, value: Number(all.seconds.toFixed(2)), unit: 's', bound_s: BOUND_S, target_s: Number((1.3 * BOUND_S).toFixed(2)), alone_s: Number(one.seconds.toFixed(2)), cold_s: coldSeconds, ratio_to_bound: Number((all.seconds / BOUND_S).toFixed(2)), load: loadavg()[0] })}\n`,
  );
  process.stdout.write(`${JSON.stringify(where(`${swarmName}.where`, all, downloaders))}\n`);
  process.stdout.write(
    `${JSON.stringify({ name: `${swarmName}.seeder_upload`, value: Number((all.uploaded / FILE_BYTES).toFixed(3)), unit: 'file sizes', target: 1.5, load: loadavg()[0] })}\n`,
  );
} finally {
  await relay?.close();
  await swarm.stop();
  tmp.remove();
}
