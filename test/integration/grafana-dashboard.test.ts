// ops/grafana/coterie.json graphs only metrics that exist: every metric name its panels query is
// declared on a live tracker's /metrics or a live peer's (control port), and each side of the
// dashboard finds its own metrics.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliSwarm } from '../helpers/cli-swarm.js';
import { declaredMetrics, scrapePeer, scrapeTracker } from '../helpers/metrics.js';

const DASHBOARD = join(import.meta.dirname, '..', '..', 'ops', 'grafana', 'coterie.json');

interface Panel {
  title: string;
  type: string;
  targets?: { expr: string }[];
  panels?: Panel[];
}

/** PromQL words that are not metric names. */
const PROMQL_WORDS = new Set([
  ...['sum', 'avg', 'min', 'max', 'count', 'rate', 'irate', 'increase', 'histogram_quantile', 'topk'],
  ...['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'offset'],
  ...['bool', 'abs', 'clamp_min', 'delta', 'deriv', 'label_replace', 'time', 'vector', 'scalar'],
]);

/** The metric names a PromQL expression reads (label matchers, groupings, ranges and strings removed). */
function metricNamesOf(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without|on|ignoring)\s*\([^)]*\)/g, '');
  return [...bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)].map((m) => m[0]).filter((w) => !PROMQL_WORDS.has(w));
}

/** A histogram's series (_bucket, _sum, _count) belong to the family `# TYPE` declares. */
function family(name: string, declared: Set<string>): string | undefined {
  if (declared.has(name)) return name;
  const base = name.replace(/_(bucket|sum|count)$/, '');
  return declared.has(base) ? base : undefined;
}

describe('the Grafana dashboard', () => {
  it('queries only metrics a live tracker or peer declares', async () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Panel[] };
    const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]).filter((p) => p.type !== 'row');
    const queried = new Map<string, string>();
    for (const p of panels) {
      expect(p.targets?.length ?? 0, `panel '${p.title}' has no query`).toBeGreaterThan(0);
      for (const t of p.targets ?? []) {
        const names = metricNamesOf(t.expr);
        expect(names.length, `no metric in '${t.expr}'`).toBeGreaterThan(0);
        for (const n of names) queried.set(n, p.title);
      }
    }
    expect(metricNamesOf('sum by (le) (rate(a_b_bucket{job=~"x"}[5m])) / rate(c_total[1m])')).toEqual([
      'a_b_bucket',
      'c_total',
    ]);

    const swarm = cliSwarm<'alice'>('coterie-dashboard-');
    const url = await swarm.startTracker();
    await swarm.startPeer('alice');
    const tracker = declaredMetrics(await scrapeTracker(url));
    const peer = declaredMetrics((await scrapePeer(swarm.dir('alice'))).text);

    const missing = [...queried].filter(
      ([n]) => family(n, tracker) === undefined && family(n, peer) === undefined,
    );
    expect(missing.map(([n, title]) => `${n} (panel '${title}')`)).toEqual([]);
    // Both sides are graphed: the tracker's request histogram and the peer's transfer counters.
    expect(queried.has('coterie_http_request_seconds_bucket')).toBe(true);
    expect(queried.has('coterie_peer_downloaded_bytes_total')).toBe(true);
    for (const n of [
      'coterie_pg_pool_connections',
      'coterie_sessions_by_state',
      'coterie_message_batch_size_bucket',
    ]) {
      expect(queried.has(n), n).toBe(true);
    }
  }, 90_000);
});
