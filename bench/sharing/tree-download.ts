// tree_download.2000 (issue 17): a folder of 2,000 small files (BENCH_TREE_DL_FILES, 32 KiB each:
// BENCH_TREE_DL_KIB) downloaded by a second peer, and one file of the same size downloaded
// by it just before, from the same seeder. Prints JSON lines:
//   tree_download.2000.s / .mib_s    the folder: seconds from download_file to completed, MiB/s
//   tree_download.2000.file_s        the one file of the same bytes, seconds
//   tree_download.2000.ratio         folder MiB/s ÷ file MiB/s (1 = a tree costs what its bytes do)
//   tree_download.2000.cpu_s_per_gib both daemons' CPU-seconds per GiB, folder and file
// each with the load average beside it: on a shared machine the ratio and the CPU move least.
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { cpuSeconds } from '../lib/cpu.js';
import { type BenchPeer, startPeerSwarm } from '../lib/peer-swarm.js';
import { makeTempDir } from '../lib/temp-dir.js';

const FILES = Number(process.env.BENCH_TREE_DL_FILES ?? 2000);
const FILE_BYTES = Number(process.env.BENCH_TREE_DL_KIB ?? 32) * 1024;
const NAME = `tree_download.${FILES}`;
const TOTAL = FILES * FILE_BYTES;
const GiB = 1024 ** 3;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const emit = (name: string, value: number, unit: string, extra: Record<string, unknown> = {}) =>
  process.stdout.write(
    `${JSON.stringify({ name: `${NAME}.${name}`, value: Number(value.toFixed(3)), unit, load: loadavg()[0], ...extra })}\n`,
  );

const tmp = makeTempDir('coterie-bench-tree-dl-');
const swarm = await startPeerSwarm(tmp.path, 'bench', ['seeder', 'getter']);
try {
  const [seeder, getter] = swarm.peers as [BenchPeer, BenchPeer];
  // The folder: 20 directories of FILES/20 files of varied bytes; the file: the same bytes in one.
  const folder = join(tmp.path, 'files', 'tree');
  const whole = Buffer.alloc(TOTAL);
  for (let k = 0; k < FILES; k++) {
    const d = join(folder, `d${k % 20}`);
    if (k < 20) mkdirSync(d, { recursive: true });
    const body = whole.subarray(k * FILE_BYTES, (k + 1) * FILE_BYTES);
    body.fill(k % 251);
    body.writeUInt32BE(k, 0);
    writeFileSync(join(d, `f${k}.bin`), body);
  }
  writeFileSync(join(tmp.path, 'files', 'one.bin'), whole);
  await seeder.call('upload_file', folder, 'bench');
  await seeder.call('upload_file', join(tmp.path, 'files', 'one.bin'), 'bench');

  /** Seconds from download_file to completed, and both daemons' CPU-seconds meanwhile. */
  const fetch = async (name: string) => {
    const dest = join(tmp.path, `dl-${name}`);
    const pids = [seeder.child.pid!, getter.child.pid!];
    const cpu0 = pids.reduce((n, p) => n + cpuSeconds(p), 0);
    const t0 = performance.now();
    await getter.call('download_file', 'bench', name, dest);
    for (;;) {
      if (performance.now() - t0 > 600_000) throw new Error(`${name} not done in 600 s`);
      const rows = (
        await getter.call<{ downloads: { dest: string; state: string; error: string | null }[] }>(
          'show_downloads',
        )
      ).downloads;
      const row = rows.find((r) => r.dest === dest);
      if (row?.state === 'failed') throw new Error(`${name}: ${row.error}`);
      if (row?.state === 'completed') break;
      await sleep(20);
    }
    const seconds = (performance.now() - t0) / 1000;
    return { seconds, cpuPerGiB: ((pids.reduce((n, p) => n + cpuSeconds(p), 0) - cpu0) * GiB) / TOTAL };
  };

  const file = await fetch('one.bin');
  const tree = await fetch('tree');
  const mib = TOTAL / 1024 ** 2;
  emit('s', tree.seconds, 's', { files: FILES, file_bytes: FILE_BYTES });
  emit('mib_s', mib / tree.seconds, 'MiB/s');
  emit('file_s', file.seconds, 's', { mib_s: Number((mib / file.seconds).toFixed(1)) });
  emit('ratio', file.seconds / tree.seconds, 'folder/file rate');
  emit('cpu_s_per_gib', tree.cpuPerGiB, 'CPU-s/GiB', { file: Number(file.cpuPerGiB.toFixed(2)) });
} finally {
  await swarm.stop();
  tmp.remove();
}
