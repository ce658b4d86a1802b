// limits.accuracy (issue 17): achieved / asked rate at 1, 16 and 128 MiB/s, for each kind of
// limit. One seeder behind a counting TCP relay (bench/lib/peer-swarm.ts) and one downloader;
// the relay counts what the seeder sends (TLS records and frames: what the limits count).
//   down  the downloader's global download limit (set_limits --download), changed to each rate
//         in turn during one download
//   up    the seeder's global upload limit (set_limits --upload), likewise
//   per   a download's own limit (download_file --limit), one download per rate
// Each rate is measured over WINDOW_S after SETTLE_S (the receiver's socket buffers fill first).
// Target: within ±5 %. LIMITS_RATES (MiB/s, comma-separated) and LIMITS_MODES choose a subset.
import { mkdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { countingRelay, sparseFile, startPeerSwarm } from '../lib/peer-swarm.js';
import { makeTempDir } from '../lib/temp-dir.js';

const MiB = 1024 * 1024;
const list = (s: string | undefined, fallback: string) => (s ?? fallback).split(',').filter((x) => x !== '');
const RATES_MIB = list(process.env.LIMITS_RATES, '1,16,128').map(Number);
const MODES = list(process.env.LIMITS_MODES, 'down,up,per') as ('down' | 'up' | 'per')[];
const WINDOW_S = Number(process.env.LIMITS_WINDOW_S ?? 6);
const SETTLE_S = 2;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const emit = (line: Record<string, unknown>) =>
  process.stdout.write(`${JSON.stringify({ ...line, load: Number((loadavg()[0] ?? 0).toFixed(1)) })}\n`);

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
  sparseFile(file, 4096 * MiB);
  await seeder!.call('upload_file', file, 'bench');
  let downloads = 0;
  /** Starts a download (after the limits for it are set) and waits for its first bytes. */
  const start = async (...options: string[]) => {
    const dest = join(tmp.path, 'dl', `accuracy-${++downloads}.bin`);
    const from = relay!.toClients();
    await downloader!.call('download_file', 'bench', 'accuracy.bin', dest, ...options);
    // The download's start (ticket, dial, handshake) is not part of any window.
    while (relay!.toClients() - from < 256 * 1024) await sleep(50);
  };
  /** MiB/s through the relay over one window, after the settling time. */
  const measure = async () => {
    await sleep(SETTLE_S * 1000);
    const from = relay!.toClients();
    const t0 = performance.now();
    await sleep(WINDOW_S * 1000);
    return (relay!.toClients() - from) / MiB / ((performance.now() - t0) / 1000);
  };
  const report = (mode: string, rate: number, mibs: number) => {
    emit({
      name: `limits.accuracy.${mode}.${rate}MiB`,
      value: Number((mibs / rate).toFixed(4)),
      unit: 'achieved/asked',
      achieved_mib_s: Number(mibs.toFixed(3)),
      window_s: WINDOW_S,
      target: '0.95-1.05',
    });
    return Math.abs(mibs / rate - 1);
  };
  /** Ends the download measured (one that completed meanwhile has nothing to cancel). */
  const cancel = () =>
    downloader!.call('cancel_download', 'accuracy.bin').catch((err: Error) => {
      if (!/is completed/.test(err.message)) throw err;
    });
  const offs: number[] = [];
  let ceilingShown = false;
  const owner = { down: downloader!, up: seeder! };
  for (const mode of MODES) {
    if (mode === 'per') {
      for (const rate of RATES_MIB) {
        await start('--limit', `${rate}MiB/s`);
        offs.push(report(mode, rate, await measure()));
        await cancel();
      }
      continue;
    }
    const flag = mode === 'down' ? '--download' : '--upload';
    await owner[mode].call('set_limits', flag, `${RATES_MIB[0]}MiB/s`);
    await start();
    for (const rate of RATES_MIB) {
      await owner[mode].call('set_limits', flag, `${rate}MiB/s`);
      offs.push(report(mode, rate, await measure()));
    }
    await owner[mode].call('set_limits', flag, '0');
    if (!ceilingShown) {
      // What this machine moves through the relay with no limit now: a rate past it cannot be met.
      emit({ name: 'limits.accuracy.unlimited', value: Number((await measure()).toFixed(1)), unit: 'MiB/s' });
      ceilingShown = true;
    }
    await cancel();
  }
  emit({
    name: 'limits.accuracy',
    value: Number((Math.max(...offs) * 100).toFixed(2)),
    unit: `% off (worst of ${MODES.join(', ')} at ${RATES_MIB.join(', ')} MiB/s)`,
    target: 5,
  });
} finally {
  await relay?.close();
  await swarm.stop();
  tmp.remove();
}
