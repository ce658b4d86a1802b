// The benchmarks' results as one self-contained HTML page (`npm run bench -- report`): inline
// SVG bar charts, no script, no stylesheet or font from elsewhere. From the JSON lines of a run
// (bench/results/*.jsonl, as bench/run.ts keeps them), or of two runs side by side (--compare).
// Charts: every figure beside its reference (with the ratio), the cluster's scaling over 1, 2
// and 3 trackers, fan-out against group size, latency percentiles; then every figure in a table.

/** One JSON line of a benchmark: {"name","value","unit","ref"?,"ratio"?, …extra numbers}. */
export interface Figure {
  name: string;
  value: number;
  unit: string;
  ref?: number;
  ratio?: number;
  [extra: string]: unknown;
}

export interface Run {
  /** What the page calls the run (its file name, say). */
  label: string;
  figures: Figure[];
}

/** The figures of a run's JSON lines; lines that are not a figure (logs, blank) are skipped. */
export function parseFigures(text: string): Figure[] {
  const out: Figure[] = [];
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (!t.startsWith('{')) continue;
    try {
      const v = JSON.parse(t) as Partial<Figure>;
      if (typeof v.name === 'string' && typeof v.value === 'number' && typeof v.unit === 'string')
        out.push(v as Figure);
    } catch {
      // not a figure
    }
  }
  return out;
}

const esc = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const fmt = (x: number) =>
  Math.abs(x) >= 100
    ? Math.round(x).toLocaleString('en-US')
    : Number(x.toPrecision(3)).toLocaleString('en-US', { maximumFractionDigits: 3 });

/** One bar: its label inside the group, its value, and a note after the value (a ratio). */
interface Bar {
  series: string;
  value: number;
  note?: string;
}
interface BarGroup {
  label: string;
  bars: Bar[];
}

const COLOURS = ['#3b6ea5', '#c8702a', '#5b9a54', '#8a5aa8', '#b04a4a', '#6b6b6b'];
const ROW = 18;
const LABEL_W = 260;
const BAR_W = 360;

/** A horizontal bar chart: one group per row block, one bar per series; a value axis from 0. */
function barChart(title: string, unit: string, groups: BarGroup[]): string {
  const series = [...new Set(groups.flatMap((g) => g.bars.map((b) => b.series)))];
  const max = Math.max(1e-9, ...groups.flatMap((g) => g.bars.map((b) => b.value)));
  const rows: string[] = [];
  let y = 28;
  for (const g of groups) {
    rows.push(`<text x="4" y="${y + 13}" class="g">${esc(g.label)}</text>`);
    for (const b of g.bars) {
      const w = Math.max(1, (b.value / max) * BAR_W);
      const colour = COLOURS[series.indexOf(b.series) % COLOURS.length];
      rows.push(
        `<rect x="${LABEL_W}" y="${y + 2}" width="${w.toFixed(1)}" height="${ROW - 4}" fill="${colour}"><title>${esc(`${g.label} ${b.series}: ${b.value} ${unit}`)}</title></rect>`,
        `<text x="${LABEL_W - 6}" y="${y + 13}" text-anchor="end" class="s">${esc(b.series)}</text>`,
        `<text x="${LABEL_W + w + 4}" y="${y + 13}" class="v">${esc(fmt(b.value))}${b.note === undefined ? '' : ` ${esc(b.note)}`}</text>`,
      );
      y += ROW;
    }
    y += 6;
  }
  const height = y + 4;
  const width = LABEL_W + BAR_W + 170;
  return `<figure><svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img"><title>${esc(title)}</title><text x="4" y="16" class="t">${esc(title)} (${esc(unit)})</text>${rows.join('')}</svg></figure>`;
}

/** Figures of every run by name, in first-seen order. */
function byName(runs: Run[]): Map<string, (Figure | undefined)[]> {
  const names = new Map<string, (Figure | undefined)[]>();
  runs.forEach((run, i) => {
    for (const f of run.figures) {
      if (!names.has(f.name))
        names.set(
          f.name,
          runs.map(() => undefined),
        );
      names.get(f.name)![i] = f;
    }
  });
  return names;
}

/** Every figure with a reference: ours and the reference as bars, the ratio beside ours; one chart each (units differ). */
function referenceCharts(runs: Run[]): string[] {
  const charts: string[] = [];
  for (const [name, per] of byName(runs)) {
    const bars: Bar[] = [];
    per.forEach((f, i) => {
      if (f?.ref === undefined) return;
      const tag = runs.length > 1 ? ` ${runs[i]!.label}` : '';
      bars.push({ series: `ours${tag}`, value: f.value, note: `×${fmt(f.ratio ?? f.value / f.ref)}` });
      bars.push({ series: `reference${tag}`, value: f.ref });
    });
    if (bars.length > 0)
      charts.push(barChart(name, per.find((f) => f !== undefined)!.unit, [{ label: '', bars }]));
  }
  return charts;
}

/** Figures named PREFIX.<n><suffix> for several n: one chart of value against n (cluster size, group size). */
function scalingChart(runs: Run[], title: string, pattern: RegExp, key: (m: RegExpExecArray) => string) {
  const groups = new Map<string, BarGroup>();
  let unit = '';
  for (const run of runs) {
    for (const f of run.figures) {
      const m = pattern.exec(f.name);
      if (m === null) continue;
      unit = f.unit;
      const label = key(m);
      if (!groups.has(label)) groups.set(label, { label, bars: [] });
      const cpu = typeof f.trackerCpuSecondsPer1k === 'number' ? `${f.trackerCpuSecondsPer1k} CPU-s/1k` : '';
      const ratio = f.ratio === undefined ? '' : `×${fmt(f.ratio)}`;
      const load = typeof f.load1 === 'number' ? `load ${f.load1}` : '';
      groups.get(label)!.bars.push({
        series: runs.length > 1 ? run.label : '',
        value: f.value,
      });
      const note = [ratio, cpu, load].filter((s) => s !== '').join(', ');
      if (note !== '') groups.get(label)!.bars.at(-1)!.note = note;
    }
  }
  if (groups.size === 0) return '';
  const sorted = [...groups.values()].sort((a, b) => Number.parseFloat(a.label) - Number.parseFloat(b.label));
  return barChart(title, unit, sorted);
}

const PERCENTILE = /^(.*)\.(p50|p90|p95|p99|p999|max)$/;

/** Figures named X.p50, X.p99, …: one chart per X with its percentiles as bars. */
function latencyCharts(runs: Run[]): string[] {
  const families = new Map<string, BarGroup[]>();
  const units = new Map<string, string>();
  for (const [name, per] of byName(runs)) {
    const m = PERCENTILE.exec(name);
    if (m === null) continue;
    const [, family, p] = m as unknown as [string, string, string];
    const bars = per.flatMap((f, i) =>
      f === undefined ? [] : [{ series: runs.length > 1 ? runs[i]!.label : p, value: f.value }],
    );
    if (!families.has(family)) families.set(family, []);
    families.get(family)!.push({ label: p, bars });
    units.set(family, per.find((f) => f !== undefined)!.unit);
  }
  return [...families]
    .filter(([family]) => /ms|s$/.test(units.get(family) ?? ''))
    .map(([family, groups]) => barChart(`${family} percentiles`, units.get(family)!, groups));
}

function table(runs: Run[]): string {
  const head =
    runs.length === 1
      ? '<tr><th>figure</th><th>value</th><th>unit</th><th>reference</th><th>ratio</th><th>more</th></tr>'
      : `<tr><th>figure</th>${runs.map((r) => `<th>${esc(r.label)}</th>`).join('')}<th>unit</th><th>${esc(runs[1]!.label)} / ${esc(runs[0]!.label)}</th></tr>`;
  const rows = [...byName(runs)].map(([name, per]) => {
    const f = per.find((x) => x !== undefined)!;
    if (runs.length === 1) {
      const extra = Object.entries(f)
        .filter(([k]) => !['name', 'value', 'unit', 'ref', 'ratio'].includes(k))
        .map(([k, v]) => `${k}=${String(v)}`)
        .join(' ');
      return `<tr><td>${esc(name)}</td><td>${fmt(f.value)}</td><td>${esc(f.unit)}</td><td>${f.ref === undefined ? '' : fmt(f.ref)}</td><td>${f.ratio === undefined ? '' : fmt(f.ratio)}</td><td>${esc(extra)}</td></tr>`;
    }
    const [a, b] = per;
    const change = a !== undefined && b !== undefined && a.value !== 0 ? fmt(b.value / a.value) : '';
    return `<tr><td>${esc(name)}</td>${per.map((x) => `<td>${x === undefined ? '' : fmt(x.value)}</td>`).join('')}<td>${esc(f.unit)}</td><td>${change}</td></tr>`;
  });
  return `<table>${head}${rows.join('')}</table>`;
}

/** The page: charts first, then every figure. */
export function renderReport(runs: Run[], generatedAt = new Date()): string {
  const sections: string[] = [];
  const add = (title: string, charts: string[]) => {
    const present = charts.filter((c) => c !== '');
    if (present.length > 0) sections.push(`<h2>${esc(title)}</h2>${present.join('')}`);
  };
  add('Against the references', referenceCharts(runs));
  add('Cluster scaling', [
    scalingChart(runs, 'cluster.send by trackers', /^cluster\.send\.(\d+)t$/, (m) => `${m[1]} tracker(s)`),
    scalingChart(
      runs,
      'cluster.lookup by trackers',
      /^cluster\.lookup\.(\d+)t$/,
      (m) => `${m[1]} tracker(s)`,
    ),
    scalingChart(runs, 'cluster.share by trackers', /^cluster\.share\.(\d+)t$/, (m) => `${m[1]} tracker(s)`),
  ]);
  add('Fan-out against group size', [
    scalingChart(runs, 'deliveries/s per member', /^messaging\.fanout\.(\d+)$/, (m) => `${m[1]} members`),
    scalingChart(runs, 'fan-out p99', /^messaging\.fanout\.(\d+)\.p99$/, (m) => `${m[1]} members`),
  ]);
  add('Latency distributions', latencyCharts(runs));
  sections.push(`<h2>Every figure</h2>${table(runs)}`);
  const title = `Coterie benchmarks: ${runs.map((r) => r.label).join(' vs ')}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>
body{font:14px system-ui,sans-serif;margin:2em;color:#222}
figure{margin:1em 0}
svg text{font:12px system-ui,sans-serif}
svg .t{font-weight:bold}
svg .g{font-weight:600}
table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}
td:first-child,th:first-child{text-align:left}
</style></head><body>
<h1>${esc(title)}</h1>
<p>Generated ${esc(generatedAt.toISOString())}. Ratios are ours / the reference (higher is better for rates, lower for times).</p>
${sections.join('\n')}
</body></html>
`;
}
