// manifest.1GiB: hashing throughput of createManifest on a 1 GiB random file,
// against `sha256sum` on the same file in the same run (both from the page
// cache: sha256sum's pass warms it). Prints JSON lines as bench/run.ts says.
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createManifest } from '../src/core/manifest.js';
import { randomFile } from './lib/random-file.js';

const SIZE = 1024 ** 3;
const MiB = 1024 * 1024;
const RUNS = 3;

function line(o: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(o)}\n`);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'coterie-bench-manifest-'));
  try {
    const path = join(dir, 'random-1GiB');
    await randomFile(path, SIZE);

    let refMiBs: number | undefined;
    const t0 = process.hrtime.bigint();
    const r = spawnSync('sha256sum', [path], { stdio: ['ignore', 'ignore', 'inherit'] });
    if (r.status === 0) refMiBs = SIZE / MiB / (Number(process.hrtime.bigint() - t0) / 1e9);
    else process.stderr.write('note: sha256sum not available, no ratio\n');

    const rates: number[] = [];
    const perCpuSecond: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const start = process.hrtime.bigint();
      const cpu0 = process.cpuUsage();
      await createManifest(path);
      rates.push(SIZE / MiB / (Number(process.hrtime.bigint() - start) / 1e9));
      // CPU time of every thread of this process: what the hashing costs, whatever else runs on the machine.
      const cpu = process.cpuUsage(cpu0);
      perCpuSecond.push(SIZE / MiB / ((cpu.user + cpu.system) / 1e6));
    }
    const single: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const start = process.hrtime.bigint();
      await createManifest(path, { workers: 1 });
      single.push(SIZE / MiB / (Number(process.hrtime.bigint() - start) / 1e9));
    }
    const value = Math.round(median(rates));
    line({
      name: 'manifest.1GiB',
      value,
      unit: 'MiB/s',
      ...(refMiBs === undefined
        ? {}
        : { ref: 'sha256sum', ratio: Math.round((value / refMiBs) * 100) / 100 }),
      workers: availableParallelism(),
    });
    line({ name: 'manifest.1GiB.1thread', value: Math.round(median(single)), unit: 'MiB/s' });
    // Throughput per CPU-second: × the number of idle cores bounds what the wall-clock figure can reach.
    line({ name: 'manifest.1GiB.per_cpu_s', value: Math.round(median(perCpuSecond)), unit: 'MiB/cpu-s' });
    line({ name: 'manifest.loadavg_1m', value: loadavg()[0], unit: 'load' });
    if (refMiBs !== undefined)
      line({ name: 'manifest.1GiB.sha256sum', value: Math.round(refMiBs), unit: 'MiB/s' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
