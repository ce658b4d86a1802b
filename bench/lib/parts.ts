// A benchmark made of parts: bench/NAME.ts runs every module of bench/NAME/ in its own process,
// in name order, so engineers can add a part (one figure family, one file) without touching a
// shared file. `BENCH_PARTS=a,b` runs only the parts named. Each part prints JSON lines on stdout
// like any benchmark; a part that fails makes the whole benchmark exit non-zero.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export function runParts(dir: string): never {
  const wanted = (process.env.BENCH_PARTS ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  const parts = existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith('.ts') && !f.startsWith('_'))
        .map((f) => f.slice(0, -3))
        .sort()
    : [];
  const unknown = wanted.filter((w) => !parts.includes(w));
  if (unknown.length > 0) {
    process.stderr.write(`unknown part(s): ${unknown.join(', ')}; available: ${parts.join(', ')}\n`);
    process.exit(2);
  }
  let failed = 0;
  for (const part of wanted.length > 0 ? wanted : parts) {
    process.stderr.write(`-- part ${part}\n`);
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(dir, `${part}.ts`)], { stdio: 'inherit' });
    if (r.status !== 0) failed++;
  }
  process.exit(failed === 0 ? 0 : 1);
}
