// Store failover benchmark (`npm run bench -- failover`): three trackers on a
// pg_auto_failover formation (scripts/pg-auto-failover.sh: a monitor, a primary
// and its synchronous secondary, health checks tuned), senders writing direct
// messages without pause, the primary's machine SIGKILLed BENCH_KILLS times
// (default 5; the old primary rejoins as a standby between kills).
//   cluster.store_failover.s.p50/.p99   kill → the first acknowledged message after it, s
//   cluster.store_promotion.s.p50/.p99  kill → the standby takes writes (pg_auto_failover's part), s
//   cluster.send.3t.sync_standby        messages/s while a synchronous standby follows the primary
//   cluster.send.3t.no_standby          messages/s after a failover, before the old primary rejoins
//                                       (the cost of synchronous replication: the difference)
//   cluster.send.3t.through_failover    messages/s over a window of BENCH_WINDOW_S s around each kill
// Needs pg_autoctl (Debian's postgresql-15-auto-failover, pg-auto-failover-cli); fsync on.
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { client } from './lib/http.js';
import { havePgAutoFailover, startFormation, watchWritable } from './lib/pg-auto-failover.js';
import { sendUntilAcknowledged } from './lib/send-acknowledged.js';
import { spawnTracker, type TrackerProcess } from './lib/tracker-process.js';

const KILLS = Number(process.env.BENCH_KILLS ?? 5);
const SENDERS = 12;
/** How long each steady-state rate is measured. */
const STEADY_S = Number(process.env.BENCH_DURATION_S ?? 5);
/** The window around a kill whose rate is `through_failover`: the kill at its start. */
const WINDOW_S = Number(process.env.BENCH_WINDOW_S ?? 20);

const emit = (name: string, value: number, unit: string) =>
  process.stdout.write(`${JSON.stringify({ name, value: Math.round(value * 100) / 100, unit })}\n`);
const log = (msg: string) => process.stderr.write(`[failover bench] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? Number.NaN;
};

if (!havePgAutoFailover()) {
  log('skipped: no pg_autoctl (apt-get install postgresql-15-auto-failover pg-auto-failover-cli)');
  process.exit(0);
}

process.env.PG_TEST_FSYNC ??= 'on';
const root = mkdtempSync(join(tmpdir(), 'coterie-bench-failover-'));
const formation = await startFormation(2);
const watch = watchWritable(formation, 50);
const trackers: TrackerProcess[] = [];
let stop = false;
try {
  for (let i = 0; i < 3; i++) {
    trackers.push(
      await spawnTracker(
        join(root, `t${i}`),
        ['--store', formation.url, '--key-file', join(root, 'tracker.key'), '--log-level', 'error'],
        { echoStderr: true, startMs: 30_000 },
      ),
    );
  }
  const api = client(trackers[0]!.url);
  await api.user('sink');
  const tokens = await Promise.all(Array.from({ length: SENDERS }, (_, i) => api.user(`s${i}`)));
  /** Per acknowledged message: when its first try was sent, when it was acknowledged. */
  const acks: { sent: number; at: number }[] = [];
  const senders = tokens.map(async (token, i) => {
    const url = trackers[i % 3]!.url;
    for (let n = 0; !stop; n++) {
      const sent = Date.now();
      acks.push({
        sent,
        ...(await sendUntilAcknowledged(url, token, 'sink', `s${i}-${n}`, { retryMs: 50 })),
      });
    }
  });
  const rate = (from: number, to: number) =>
    acks.filter((a) => a.at >= from && a.at < to).length / ((to - from) / 1000);
  /** The first message sent after the kill and acknowledged (one sent before may have been committed before it). */
  const firstAfter = (t: number) => acks.find((a) => a.sent >= t);
  const steady = async () => {
    await sleep(1000);
    const from = Date.now();
    await sleep(STEADY_S * 1000);
    return rate(from, Date.now());
  };

  const failover: number[] = [];
  const promotion: number[] = [];
  const through: number[] = [];
  const withStandby: number[] = [];
  const withoutStandby: number[] = [];
  let primary = 'n1';
  for (let k = 0; k < KILLS; k++) {
    withStandby.push(await steady());
    const standby = formation.nodes.find((n) => n !== primary)!;
    await formation.kill(primary);
    // Once the script returns: under load it takes a few hundred ms, and the old primary
    // acknowledged messages until its kill.
    const killedAt = Date.now();
    while (watch.roles().get(standby) !== 'primary') await sleep(20);
    promotion.push(watch.writableSince(standby)! - killedAt);
    while (firstAfter(killedAt) === undefined) await sleep(5);
    failover.push(firstAfter(killedAt)!.at - killedAt);
    await sleep(Math.max(0, killedAt + WINDOW_S * 1000 - Date.now()));
    through.push(rate(killedAt, killedAt + WINDOW_S * 1000));
    withoutStandby.push(await steady());
    log(
      `kill ${k + 1}: ${primary} killed, ${standby} writable after ${promotion.at(-1)} ms, first acknowledged after ${failover.at(-1)} ms; load ${loadavg()[0]!.toFixed(1)}`,
    );
    await formation.rejoin(primary);
    await formation.settled();
    primary = standby;
  }
  stop = true;
  await Promise.all(senders);
  emit('cluster.store_failover.s.p50', percentile(failover, 50) / 1000, 's');
  emit('cluster.store_failover.s.p99', percentile(failover, 99) / 1000, 's');
  emit('cluster.store_promotion.s.p50', percentile(promotion, 50) / 1000, 's');
  emit('cluster.store_promotion.s.p99', percentile(promotion, 99) / 1000, 's');
  emit('cluster.send.3t.sync_standby', percentile(withStandby, 50), 'msg/s');
  emit('cluster.send.3t.no_standby', percentile(withoutStandby, 50), 'msg/s');
  emit('cluster.send.3t.through_failover', percentile(through, 50), 'msg/s');
  emit('cluster.failover_bench.load1', loadavg()[0]!, 'load');
  if (watch.violations().length > 0) {
    log(`a tracker connection was on a standby: ${watch.violations().slice(0, 3).join('; ')}`);
    process.exitCode = 1;
  }
} finally {
  stop = true;
  await watch.stop();
  for (const t of trackers) t.proc.kill('SIGKILL');
  await formation.stop();
  rmSync(root, { recursive: true, force: true });
}
