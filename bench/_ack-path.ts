// Dev aid (not part of `npm run bench`): the tracker's CPU per acknowledgement of a big group,
// what the machine's load moves least. A tracker on SQLite in its own process
// (bench/_messaging-tracker.ts); a group of N members connected from this process, acknowledging
// nothing by themselves; the sender posts ROUNDS messages; then ROUNDS rounds in which every member
// acknowledges one more message (one ack_messages frame each: N frames, N cursor moves and the
// receipts they make to the sender). Prints the tracker's CPU-µs and read+write calls per
// acknowledgement frame, and the receipt frames the sender got.
//   node --import tsx bench/_ack-path.ts [N=1000] [ROUNDS=40]
// BENCH_TRACKER_NODE_ARGS='--cpu-prof --cpu-prof-dir DIR' profiles the tracker (its whole life),
// BENCH_PROF_PHASES=DIR the rounds alone (DIR/tracker-acks.cpuprofile).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuSeconds, wakeCounts } from './lib/cpu.js';
import { api, userToken } from './lib/http.js';
import { SessionClient } from './lib/session-client.js';
import { until } from './lib/wait.js';

const N = Number(process.argv[2] ?? 1000);
const ROUNDS = Number(process.argv[3] ?? 40);
const root = mkdtempSync(join(tmpdir(), 'coterie-bench-acks-'));
const child = spawn(
  process.execPath,
  [
    ...(process.env.BENCH_TRACKER_NODE_ARGS ?? '').split(' ').filter((a) => a !== ''),
    '--import',
    'tsx',
    fileURLToPath(new URL('./_messaging-tracker.ts', import.meta.url)),
    root,
  ],
  { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env } },
);
const base = await new Promise<string>((resolve) => {
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    const m = /(https?:\/\/\S+)\n/.exec(out);
    if (m) resolve(m[1]!);
  });
});
try {
  const names = Array.from({ length: N + 1 }, (_, i) => `ack${i}`);
  const tokens: string[] = [];
  for (let i = 0; i < names.length; i += 50)
    tokens.push(...(await Promise.all(names.slice(i, i + 50).map((n) => userToken(base, n)))));
  await api(base, 'POST', '/v1/groups', { groupId: 'acks' }, tokens[0]);
  for (let i = 1; i < names.length; i += 50)
    await Promise.all(
      names.slice(i, i + 50).map(async (n, k) => {
        await api(base, 'POST', '/v1/groups/acks/join', undefined, tokens[i + k]);
        await api(base, 'POST', `/v1/groups/acks/requests/${n}/accept`, undefined, tokens[0]);
      }),
    );
  const sender = await SessionClient.connect(base, names[0]!, tokens[0]!, { validate: false });
  const members: SessionClient[] = [];
  for (let i = 1; i < names.length; i += 50)
    members.push(
      ...(await Promise.all(
        names
          .slice(i, i + 50)
          .map((n, k) => SessionClient.connect(base, n, tokens[i + k]!, { validate: false, autoAck: false })),
      )),
    );
  for (let r = 0; r < ROUNDS; r++) await sender.send({ groupId: 'acks' }, `a-${r}`);
  await until(
    'every member has every message',
    () => members.every((m) => m.received.length >= ROUNDS),
    60_000,
    5,
  );
  const streamId = members[0]!.received[0]!.streamId;
  const seqs = members[0]!.received.map((m) => m.seq);
  // BENCH_PROF_PHASES=DIR: the rounds alone profiled (DIR/tracker-acks.cpuprofile).
  if (process.env.BENCH_PROF_PHASES !== undefined) child.stdin.write('profile start\n');
  const cpu0 = cpuSeconds(child.pid!);
  const calls0 = wakeCounts(child.pid!).syscalls;
  const t0 = performance.now();
  for (let r = 0; r < ROUNDS; r++) {
    for (const m of members) m.raw({ type: 'ack_messages', cursors: [{ streamId, delivered: seqs[r] }] });
    // Every member's receipt for this round at the sender: the round is through the tracker.
    const want = (r + 1) * N;
    await until('the round is acknowledged', () => sender.receipts.length >= want, 60_000, 1);
  }
  const cpu = cpuSeconds(child.pid!) - cpu0;
  const calls = wakeCounts(child.pid!).syscalls - calls0;
  if (process.env.BENCH_PROF_PHASES !== undefined) child.stdin.write('profile stop acks\n');
  const acks = ROUNDS * N;
  process.stdout.write(
    `${JSON.stringify({ name: 'messaging.ack_path.tracker_cpu_us_per_ack', value: Number(((cpu / acks) * 1e6).toFixed(2)), unit: 'CPU-µs', acks, syscallsPerAck: Number((calls / (ROUNDS * N)).toFixed(3)), receipts: sender.receipts.length, receiptFrames: (sender as { receiptFrames?: number }).receiptFrames, seconds: Number(((performance.now() - t0) / 1000).toFixed(2)), load: loadavg()[0] })}\n`,
  );
  await Promise.all([sender.close(), ...members.map((m) => m.close())]);
} finally {
  child.stdin.end();
  await new Promise((r) => child.once('exit', r));
  rmSync(root, { recursive: true, force: true });
}
