// limits.accuracy (issue 17): achieved / asked download rate at 1, 16 and 128 MiB/s. One seeder
// behind a counting TCP relay (bench/lib/peer-swarm.ts), one downloader whose global download
// limit is set to each rate in turn during one download of a 2 GiB file; each rate is measured
// over WINDOW_S after SETTLE_S (the receiver's socket buffers fill first). Target: within ±5 %.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { countingRelay, sparseFile, startPeerSwarm } from '../lib/peer-swarm.js';
import { makeTempDir } from '../lib/temp-dir.js';

const MiB = 1024 * 1024;
const RATES_MIB = [1, 16, 128];
const WINDOW_S = Number(process.env.LIMITS_WINDOW_S ?? 6);
const SETTLE_S = 2;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const tmp = makeTempDir('coterie-bench-limits-');
let relay: Awaited<ReturnType<typeof countingRelay>> | undefined;
const swarm = await startPeerSwarm(
  tmp.path,
  'bench',
  ['seeder', 'downloader'],
  (n) => (n === 'seeder' ? ['--host', '127.0.0.2', '--advertise', '127.0.0.3'] : []),
  async ([seeder]) => {
    // Everything the seeder sends passes the relay before the tracker ever dials it back.
    relay = await countingRelay('127.0.0.3', '127.0.0.2', seeder!.port);
  },
);
try {
  const [seeder, downloader] = swarm.peers;
  const file = join(tmp.path, 'files', 'accuracy.bin');
  mkdirSync(join(tmp.path, 'files'), { recursive: true });
  mkdirSync(join(tmp.path, 'dl'), { recursive: true });
  // Enough for every window at its rate and the unlimited one after them.
  sparseFile(file, 2048 * MiB);
  await seeder!.call('upload_file', file, 'bench');
  await downloader!.call('set_limits', '--download', `${RATES_MIB[0]}MiB/s`);
  await downloader!.call('download_file', 'bench', 'accuracy.bin', join(tmp.path, 'dl', 'accuracy.bin'));
  // The download's start (ticket, dial, handshake) is not part of any window.
  while (relay!.toClients() < 256 * 1024) await sleep(50);
  const achieved: Record<string, number> = {};
  for (const rate of RATES_MIB) {
    await downloader!.call('set_limits', '--download', `${rate}MiB/s`);
    await sleep(SETTLE_S * 1000);
    const from = relay!.toClients();
    const t0 = performance.now();
    await sleep(WINDOW_S * 1000);
    const mibs = (relay!.toClients() - from) / MiB / ((performance.now() - t0) / 1000);
    achieved[rate] = mibs;
    process.stdout.write(
      `${JSON.stringify({ name: `limits.accuracy.${rate}MiB`, value: Number((mibs / rate).toFixed(4)), unit: 'achieved/asked', achieved_mib_s: Number(mibs.toFixed(3)), window_s: WINDOW_S, target: '0.95-1.05' })}\n`,
    );
  }
  // What this machine moves through the relay with no limit now: a rate past it cannot be met.
  await downloader!.call('set_limits', '--download', '0');
  await sleep(SETTLE_S * 1000);
  const from = relay!.toClients();
  const t0 = performance.now();
  await sleep(WINDOW_S * 1000);
  const ceiling = (relay!.toClients() - from) / MiB / ((performance.now() - t0) / 1000);
  process.stdout.write(
    `${JSON.stringify({ name: 'limits.accuracy.unlimited', value: Number(ceiling.toFixed(1)), unit: 'MiB/s', note: 'this machine now, no limit' })}\n`,
  );
  const worst = Math.max(...RATES_MIB.map((r) => Math.abs(achieved[r]! / r - 1)));
  process.stdout.write(
    `${JSON.stringify({ name: 'limits.accuracy', value: Number((worst * 100).toFixed(2)), unit: '% off (worst of 1, 16, 128 MiB/s)', target: 5 })}\n`,
  );
} finally {
  await relay?.close();
  await swarm.stop();
  tmp.remove();
}
