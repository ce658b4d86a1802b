// swarm.16x256MiB (issue 17): one seeder whose upload is capped at 40 MiB/s (its
// --upload-limit, counted at the socket), sixteen downloaders of one 256 MiB file starting
// together. The physical bound is the seeder uploading each byte once: 256 / 40 = 6.4 s.
// Figures: the time for all sixteen (target ≤ 8.3 s = 1.3 × 6.4), the seeder's upload bytes
// over the file size (target ≤ 1.5; counted by a TCP relay in front of the seeder), and beside
// them one downloader alone under the same cap, measured apart: it runs first and is stopped
// before the sixteen start, so they do not fetch from a complete copy the bound does not count.
// SWARM_DOWNLOADERS changes the sixteen.
import { mkdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
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
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Row {
  dest: string;
  state: string;
  error: string | null;
}

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
  const fetch = async (peers: typeof downloaders) => {
    const from = relay!.toClients();
    const t0 = performance.now();
    const dests = new Map(peers.map((p) => [p, join(tmp.path, 'dl', `${p.name}.bin`)]));
    await Promise.all(peers.map((p) => p.call('download_file', 'bench', 'release.bin', dests.get(p)!)));
    const pending = new Set(peers);
    const deadline = t0 + 300_000;
    while (pending.size > 0) {
      if (performance.now() > deadline) throw new Error(`${pending.size} downloads not done in 300 s`);
      for (const p of [...pending]) {
        const rows = (await p.call<{ downloads: Row[] }>('show_downloads')).downloads;
        const row = rows.find((r) => r.dest === dests.get(p));
        if (row?.state === 'failed') throw new Error(`${p.name}: ${row.error}`);
        if (row?.state === 'completed') pending.delete(p);
      }
      await sleep(50);
    }
    return { seconds: (performance.now() - t0) / 1000, uploaded: relay!.toClients() - from };
  };

  const one = await fetch([alone!]);
  process.stdout.write(
    `${JSON.stringify({ name: `swarm.1x${FILE_MIB}MiB`, value: Number(one.seconds.toFixed(2)), unit: 's', bound_s: BOUND_S, seeder_upload_ratio: Number((one.uploaded / FILE_BYTES).toFixed(3)), note: 'one downloader alone, same seeder and cap, stopped before the swarm', load: loadavg()[0] })}\n`,
  );
  // The lone downloader holds the whole file now and would serve it: gone before the sixteen.
  await stopBenchPeer(alone!);
  const all = await fetch(downloaders);
  process.stdout.write(
    `${JSON.stringify({ name: `swarm.${DOWNLOADERS}x${FILE_MIB}MiB`, value: Number(all.seconds.toFixed(2)), unit: 's', bound_s: BOUND_S, target_s: Number((1.3 * BOUND_S).toFixed(2)), alone_s: Number(one.seconds.toFixed(2)), ratio_to_bound: Number((all.seconds / BOUND_S).toFixed(2)), load: loadavg()[0] })}\n`,
  );
  process.stdout.write(
    `${JSON.stringify({ name: `swarm.${DOWNLOADERS}x${FILE_MIB}MiB.seeder_upload`, value: Number((all.uploaded / FILE_BYTES).toFixed(3)), unit: 'file sizes', target: 1.5, load: loadavg()[0] })}\n`,
  );
} finally {
  await relay?.close();
  await swarm.stop();
  tmp.remove();
}
