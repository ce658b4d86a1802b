// `npm run bench` runs every benchmark; `npm run bench -- NAME [NAME…]` runs some.
// Each benchmark is bench/NAME.ts, run in its own process, printing one JSON
// line per figure on stdout: {"name","value","unit","ref"?,"ratio"?}. Those lines
// are also kept in bench/results/<time>.jsonl (gitignored), one file per run.
//   npm run bench -- NAME… --report FILE     also writes the run's charts to FILE (HTML)
//   npm run bench -- report [RUN.jsonl] [--out FILE]   charts of a kept run (default: the last)
//   npm run bench -- report --compare A.jsonl B.jsonl [--out FILE]   two runs on one page
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseFigures, type Run, renderReport } from './lib/report.js';

const dir = fileURLToPath(new URL('.', import.meta.url));
const resultsDir = join(dir, 'results');
const all = readdirSync(dir)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.startsWith('_'))
  .map((f) => f.slice(0, -3))
  .sort();

const args = process.argv.slice(2);
/** The value after `flag`, taken out of args. */
function option(flag: string, count = 1): string[] | undefined {
  const i = args.indexOf(flag);
  if (i < 0) return undefined;
  const values = args.splice(i, count + 1).slice(1);
  if (values.length < count || values.some((v) => v.startsWith('-'))) {
    process.stderr.write(`${flag} needs ${count} value(s)\n`);
    process.exit(2);
  }
  return values;
}

const readRun = (file: string): Run => ({
  label: basename(file, '.jsonl'),
  figures: parseFigures(readFileSync(file, 'utf8')),
});

function lastRun(): string {
  const runs = (existsSync(resultsDir) ? readdirSync(resultsDir, { withFileTypes: true }) : [])
    .filter((e) => e.isFile() && e.name.endsWith('.jsonl'))
    .map((e) => e.name)
    .sort();
  if (runs.length === 0) throw new Error(`no kept run in ${resultsDir}: run a benchmark first`);
  return join(resultsDir, runs.at(-1)!);
}

function writeReport(runs: Run[], out: string) {
  writeFileSync(out, renderReport(runs));
  process.stderr.write(
    `report: ${out} (${runs.map((r) => `${r.label}: ${r.figures.length} figures`).join('; ')})\n`,
  );
}

if (args[0] === 'report') {
  args.shift();
  const out = option('--out')?.[0] ?? join(resultsDir, 'report.html');
  const compare = option('--compare', 2);
  const runs = compare !== undefined ? compare.map(readRun) : [readRun(args[0] ?? lastRun())];
  mkdirSync(resultsDir, { recursive: true });
  writeReport(runs, out);
  process.exit(0);
}

const reportTo = option('--report')?.[0];
const wanted = args.filter((a) => !a.startsWith('-'));
const unknown = wanted.filter((w) => !all.includes(w));
if (unknown.length > 0) {
  process.stderr.write(`unknown benchmark(s): ${unknown.join(', ')}; available: ${all.join(', ')}, report\n`);
  process.exit(2);
}
mkdirSync(resultsDir, { recursive: true });
const kept = join(resultsDir, `${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`);

/** Runs one benchmark, passing its stdout on and keeping its JSON lines; resolves with its exit code. */
function runBenchmark(name: string): Promise<number | null> {
  const child = spawn(process.execPath, ['--import', 'tsx', `${dir}${name}.ts`], {
    stdio: ['inherit', 'pipe', 'inherit'],
  });
  let partial = '';
  child.stdout.on('data', (d: Buffer) => {
    process.stdout.write(d);
    const lines = (partial + d.toString('utf8')).split('\n');
    partial = lines.pop()!;
    const figures = lines.filter((l) => l.trim().startsWith('{'));
    if (figures.length > 0) appendFileSync(kept, `${figures.join('\n')}\n`);
  });
  return new Promise((resolve) =>
    child.once('close', (code) => {
      if (partial.trim().startsWith('{')) appendFileSync(kept, `${partial}\n`);
      resolve(code);
    }),
  );
}

let failed = 0;
for (const name of wanted.length > 0 ? wanted : all) {
  process.stderr.write(`== bench ${name}\n`);
  if ((await runBenchmark(name)) !== 0) failed++;
}
process.stderr.write(`figures kept in ${kept}\n`);
if (reportTo !== undefined) writeReport([readRun(kept)], reportTo);
process.exit(failed === 0 ? 0 : 1);
