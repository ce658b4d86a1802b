import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// The NATS JetStream yardstick (../shared/anchors/nats/run.sh): it installs Debian's nats-server
// when missing (apt-get), runs it with JetStream on a file store on loopback, and prints its
// js-e2e figures (publish → durable pull consumer, ack each) as JSON lines.
const ANCHOR = fileURLToPath(new URL('../../../shared/anchors/nats/run.sh', import.meta.url));
const ANCHOR_FALLBACK = '/work/shared/anchors/nats/run.sh';

export interface NatsReference {
  /** nats.js_e2e.max: msgs/s at full rate. */
  max?: number;
  /** nats.js_e2e.paced2000.p99: ms at 2,000 msgs/s. */
  p99At2000?: number;
  /** Its JSON lines, as printed (to pass on). */
  lines: string[];
  /** Why there is no figure, when there is none. */
  note?: string;
}

/** Runs the anchor (RUNS rounds, 3 by default; BENCH_NATS_RUNS overrides) and reads its figures. */
export function natsReference(runs = Number(process.env.BENCH_NATS_RUNS ?? 3)): NatsReference {
  const script = existsSync(ANCHOR) ? ANCHOR : ANCHOR_FALLBACK;
  if (!existsSync(script)) return { lines: [], note: `anchor script not found at ${ANCHOR}` };
  const r = spawnSync('bash', [script], {
    env: { ...process.env, RUNS: String(runs) },
    encoding: 'utf8',
    timeout: 20 * 60 * 1000,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const ref: NatsReference = { lines: [] };
  for (const l of (r.stdout ?? '').split('\n')) {
    if (!l.startsWith('{')) continue;
    ref.lines.push(l);
    const o = JSON.parse(l) as { name: string; value?: number | null; note?: string };
    if (o.name === 'nats.js_e2e.max' && typeof o.value === 'number') ref.max = o.value;
    if (o.name === 'nats.js_e2e.paced2000.p99' && typeof o.value === 'number') ref.p99At2000 = o.value;
    if (o.name === 'nats.unavailable') ref.note = o.note ?? 'nats unavailable';
  }
  if (ref.lines.length === 0) ref.note = `the NATS anchor printed no figure (exit ${r.status})`;
  return ref;
}
