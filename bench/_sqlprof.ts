// Dev aid: `BENCH_SQL=./bench/_sqlprof.ts npm run bench -- messaging` preloads this into the
// benchmark tracker, which then prints, at exit, where its SQLite time went (per statement text).
import Database from 'better-sqlite3';

const d = new Database(':memory:');
const proto = Object.getPrototypeOf(d.prepare('select 1')) as Record<string, (...a: unknown[]) => unknown>;
const stats = new Map<string, { n: number; ms: number }>();
for (const m of ['all', 'run', 'get']) {
  const orig = proto[m]!;
  proto[m] = function (this: { source: string }, ...args: unknown[]) {
    const t = performance.now();
    try {
      return orig.apply(this, args);
    } finally {
      const k = this.source
        .replace(/\(\?(, \?)*\)(, \(\?(, \?)*\))*/g, '(…)')
        .replace(/in \((\?, )*\?\)/g, 'in (…)')
        .slice(0, 140);
      const s = stats.get(k) ?? { n: 0, ms: 0 };
      s.n++;
      s.ms += performance.now() - t;
      stats.set(k, s);
    }
  };
}
process.on('exit', () => {
  for (const [k, v] of [...stats].sort((a, b) => b[1].ms - a[1].ms).slice(0, 15))
    process.stderr.write(`${v.ms.toFixed(0).padStart(6)} ms ${String(v.n).padStart(7)}× ${k}\n`);
});
