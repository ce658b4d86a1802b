// Prometheus text for tests: scrape a tracker's /metrics (or a peer's, on its control port with
// its token) and read samples out of it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from '../../bench/lib/http.js';

/** GET /metrics of a tracker URL; the text (a non-200 answer throws). */
export async function scrapeTracker(url: string): Promise<string> {
  const r = await request(url, 'GET', '/metrics');
  if (r.status !== 200) throw new Error(`GET /metrics: ${r.status} ${r.text}`);
  return r.text;
}

/** GET /metrics on a running peer's control port, with the token of its daemon.json. */
export async function scrapePeer(dataDir: string, token?: string): Promise<{ status: number; text: string }> {
  const info = JSON.parse(readFileSync(join(dataDir, 'daemon.json'), 'utf8')) as {
    control: { host: string; port: number };
    token: string;
  };
  const r = await request(`http://${info.control.host}:${info.control.port}`, 'GET', '/metrics', {
    headers: { authorization: `Bearer ${token ?? info.token}` },
  });
  return { status: r.status, text: r.text };
}

/**
 * The value of one sample: `name` with exactly these labels (in any order), or the sum over
 * every label set when `labels` is undefined; 0 when absent.
 */
export function sample(text: string, name: string, labels?: Record<string, string>): number {
  let total = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null || m[1] !== name) continue;
    const got = Object.fromEntries(
      [...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1]!, l[2]!]),
    );
    if (labels !== undefined) {
      const want = Object.entries(labels);
      if (want.length !== Object.keys(got).length || want.some(([k, v]) => got[k] !== v)) continue;
    }
    total += Number(m[3]);
  }
  return total;
}

/** Every metric family the text declares (`# TYPE name kind`). */
export function declaredMetrics(text: string): Set<string> {
  return new Set([...text.matchAll(/^# TYPE (\S+) \S+$/gm)].map((m) => m[1]!));
}
