// Messaging benchmark: a tracker on the embedded SQLite store (its own
// process), users connected through real sessions (/v1/session, the protocol
// the peer daemon speaks) from this process. Prints one JSON line per figure:
//   messaging.send_to_delivered.max  messages/s from many senders until every recipient acknowledged
//   messaging.push_latency.p50/.p99  ms from send to the recipient, paced at 2,000 messages/s, over the
//                                    5 s after 2 s of the same pace (BENCH_WARMUP_S), whose p99 is .warmup_p99
//   messaging.fanout.N               a group of N = 10, 100, 1000 connected members, 50 group messages/s
//                                    for 5 s after 2 s of warm-up (its p99: .warmup_p99): deliveries/s per
//                                    member (flat = 50), .p50/.p99 ms from the
//                                    send to each arrival (the members but the sender run in
//                                    BENCH_FANOUT_PROCS=2 processes of their own: _fanout-members.ts),
//                                    .lost deliveries, tracker CPU-s, read+write calls and wake-ups per 1,000;
//                                    the rate's `ref` is the first size's rate (flat: ratio 0.8 … 1.2),
//                                    the p99's the issue's 50 ms
//   messaging.group100.fanout.p99    ms until all 100 members have a group message (from the N = 100 run)
//   messaging.catchup.100k           s for a reconnecting user to have 100,000 messages
// In the same run, before the tracker starts, NATS JetStream's js-e2e (../shared/anchors/nats/,
// bench/lib/nats-reference.ts; BENCH_NATS=0 skips it): its lines are passed on, and
// send_to_delivered.max and push_latency.p99 carry it as `ref` with `ratio` = ours / ref
// (targets: max ≥ 2× its full rate; p99 at 2,000/s ≤ its p99 and ≤ 2 ms).
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session as InspectorSession } from 'node:inspector/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { cpuSeconds, wakeCounts } from './lib/cpu.js';
import { api, userToken } from './lib/http.js';
import { type MembersReply, type MembersRequest, sharedClockOffset } from './lib/members-ipc.js';
import { type NatsReference, natsReference } from './lib/nats-reference.js';
import { SessionClient } from './lib/session-client.js';
import { until } from './lib/wait.js';

const SENDERS = Number(process.env.BENCH_SENDERS ?? 20);
const MAX_MESSAGES = Number(process.env.BENCH_MESSAGES ?? 100_000);
const WINDOW = 256;
const PACED_RATE = 2000;
const PACED_SECONDS = 5;
/**
 * Seconds each paced phase (push latency, each fan-out) runs at its pace before the seconds it
 * measures (BENCH_WARMUP_S; 0 measures from the first message). A tracker serves for days; what
 * its first seconds cost is V8 compiling the paced path (sends alone, not in the max phase's
 * batches) and, for a group, each member's first acknowledgement creating its cursor: at 1,000
 * members the first 25 messages took 100-185 ms to reach everyone, the rest 13-40 ms. The
 * reference's nats-server is compiled ahead of time. Those seconds are reported apart, as
 * `.warmup_p99`, never dropped unseen.
 */
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_S ?? 2);
/** Group sizes of the fan-out figures (messaging.fanout.N); BENCH_FANOUT=100 runs one. */
const FANOUT_SIZES = (process.env.BENCH_FANOUT ?? '10,100,1000').split(',').map(Number);
const GROUP_RATE = 50;
/** The bound on a fan-out's p99 (at 1,000 members): its lines carry it as `ref`. */
const FANOUT_P99_TARGET_MS = 50;
/** The per-member rate of the first fan-out measured: the `ref` of each fan-out's rate. */
let fanoutBase: number | undefined;
const GROUP_SECONDS = 5;
const CATCHUP = 100_000;
/** The tracker validates what it receives; the load generator skips checking what it gets back. */
const FAST_CLIENT = { validate: false } as const;

const log = (s: string) => process.stderr.write(`${s}\n`);
const emit = (name: string, value: number, unit: string, ref?: number) =>
  process.stdout.write(
    `${JSON.stringify({
      name,
      // Small figures (CPU-s per 1,000 deliveries) keep their digits.
      value: Number(value.toFixed(value !== 0 && Math.abs(value) < 0.1 ? 6 : 3)),
      unit,
      ...(ref === undefined ? {} : { ref, ratio: Number((value / ref).toFixed(3)) }),
    })}\n`,
  );

const nats: NatsReference =
  process.env.BENCH_NATS === '0' ? { lines: [], note: 'BENCH_NATS=0' } : natsReference();
for (const l of nats.lines) process.stdout.write(`${l}\n`);
if (nats.note !== undefined) log(`no NATS JetStream reference: ${nats.note}`);

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

async function startTrackerProcess(dataDir: string): Promise<{ url: string; child: ChildProcess }> {
  const script = fileURLToPath(new URL('./_messaging-tracker.ts', import.meta.url));
  const prof =
    process.env.BENCH_PROF === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_PROF];
  const pre = process.env.BENCH_SQL === undefined ? [] : ['--import', process.env.BENCH_SQL];
  // Dev aid: BENCH_TRACKER_NODE_ARGS='--trace-gc' (or --cpu-prof …) passes node options to the tracker.
  const nodeArgs = (process.env.BENCH_TRACKER_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
  const child = spawn(process.execPath, [...prof, ...nodeArgs, '--import', 'tsx', ...pre, script, dataDir], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /(https?:\/\/\S+)\n/.exec(out);
      if (m) {
        child.stdout!.off('data', onData);
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`tracker exited (${code})`)));
  });
  return { url, child };
}

/** The tracker's fan-out trace (bench/lib/fanout-trace.ts): `trace start`, then its figures. */
function traceStart(): void {
  trackerStdin?.write('trace start\n');
}
function traceReport(child: ChildProcess): Promise<Record<string, number>> {
  return new Promise((resolve) => {
    let out = '';
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /^trace (.*)$/m.exec(out);
      if (m === null) return;
      child.stdout!.off('data', onData);
      resolve(JSON.parse(m[1]!) as Record<string, number>);
    };
    child.stdout!.on('data', onData);
    trackerStdin?.write('trace\n');
  });
}
let trackerChild: ChildProcess | undefined;

let trackerPid = 0;
let trackerStdin: NodeJS.WritableStream | undefined;

/**
 * Dev aid: BENCH_PROF_PHASES=DIR profiles each measured phase alone, the tracker
 * (DIR/tracker-NAME.cpuprofile) and this process (DIR/bench-NAME.cpuprofile).
 */
const PROF_PHASES = process.env.BENCH_PROF_PHASES;
const benchProfiler = PROF_PHASES === undefined ? undefined : new InspectorSession();
async function profileStart(): Promise<void> {
  if (benchProfiler === undefined) return;
  trackerStdin?.write('profile start\n');
  benchProfiler.connect();
  await benchProfiler.post('Profiler.enable');
  await benchProfiler.post('Profiler.start');
}
async function profileStop(name: string): Promise<void> {
  if (benchProfiler === undefined) return;
  trackerStdin?.write(`profile stop ${name}\n`);
  const { profile } = await benchProfiler.post('Profiler.stop');
  writeFileSync(join(PROF_PHASES!, `bench-${name}.cpuprofile`), JSON.stringify(profile));
  benchProfiler.disconnect();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Many senders, each with a window of sends in flight, to their own recipient; until every receipt is back. */
async function sendToDelivered(base: string): Promise<void> {
  const pairs = await Promise.all(
    Array.from({ length: SENDERS }, async (_, i) => {
      const [st, rt] = await Promise.all([userToken(base, `snd${i}`), userToken(base, `rcv${i}`)]);
      return {
        sender: await SessionClient.connect(base, `snd${i}`, st, FAST_CLIENT),
        recipient: await SessionClient.connect(base, `rcv${i}`, rt, FAST_CLIENT),
      };
    }),
  );
  const per = Math.floor(MAX_MESSAGES / SENDERS);
  await profileStart();
  const cpu0 = cpuSeconds(trackerPid);
  const own0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    pairs.map(async ({ sender, recipient }) => {
      let next = 0;
      let lastSeq = 0;
      const worker = async () => {
        while (next < per) {
          next++;
          const r = await sender.send({ to: recipient.userId }, 'x'.repeat(100));
          lastSeq = Math.max(lastSeq, r.seq);
        }
      };
      await Promise.all(Array.from({ length: WINDOW }, worker));
      await until(
        'the benchmark step',
        () => sender.receipts.some((r) => r.reader === recipient.userId && r.delivered >= lastSeq),
        60_000,
        1,
      );
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds(trackerPid) - cpu0;
  const own = process.cpuUsage(own0);
  await profileStop('max');
  emit('messaging.send_to_delivered.max', (per * SENDERS) / seconds, 'msgs/s', nats.max);
  // What one core of tracker time carries, whatever else runs on the machine.
  emit('messaging.send_to_delivered.per_tracker_cpu_second', (per * SENDERS) / cpu, 'msgs/cpu-s');
  // The senders' and recipients' side (this process): on 2 cores it shares the machine with the tracker.
  emit(
    'messaging.send_to_delivered.clients_cpu_ms_per_1k',
    ((own.user + own.system) / 1e3 / (per * SENDERS)) * 1000,
    'CPU-ms',
  );
  log(
    `  ${per * SENDERS} messages from ${SENDERS} senders delivered and acknowledged in ${seconds.toFixed(2)} s`,
  );
  for (const p of pairs) await Promise.all([p.sender.close(), p.recipient.close()]);
}

/**
 * Sends `warm + total` messages at `rate` a second, message i due i / rate after the first:
 * `send(i)` each. `begin` runs just before message `warm`, the first measured one (at once when
 * there is no warm-up), and what it returns is returned: the measured phase's starting counters.
 */
async function pacedSends<T>(
  rate: number,
  warm: number,
  total: number,
  begin: () => T | Promise<T>,
  send: (i: number) => void,
): Promise<T> {
  let measured!: T;
  const start = performance.now();
  for (let i = 0; i < warm + total; i++) {
    if (i === warm) measured = await begin();
    const wait = start + (i * 1000) / rate - performance.now();
    if (wait > 1) await sleep(wait);
    send(i);
  }
  return measured;
}

/**
 * One sender paced at 2,000 messages/s; the time each spends between send and arrival. The first
 * WARMUP_SECONDS of messages are timed apart (`.warmup_p99`); the figures are the PACED_SECONDS after.
 */
async function pushLatency(base: string): Promise<void> {
  const latencies: number[] = [];
  const warmLatencies: number[] = [];
  const sentAt = new Map<string, number>();
  const [st, rt] = await Promise.all([userToken(base, 'pace-s'), userToken(base, 'pace-r')]);
  const recipient = await SessionClient.connect(base, 'pace-r', rt, {
    ...FAST_CLIENT,
    onMessages: (items, at) => {
      for (const m of items) {
        const t = sentAt.get(m.body);
        if (t !== undefined) (m.body.startsWith('w') ? warmLatencies : latencies).push(at - t);
      }
    },
  });
  const sender = await SessionClient.connect(base, 'pace-s', st, FAST_CLIENT);
  const warm = Math.round(PACED_RATE * WARMUP_SECONDS);
  const total = PACED_RATE * PACED_SECONDS;
  const { gc, cpu0, t0 } = await pacedSends(
    PACED_RATE,
    warm,
    total,
    async () => {
      const gc = gcPauses();
      await profileStart();
      return { gc, cpu0: cpuSeconds(trackerPid), t0: performance.now() };
    },
    (i) => {
      const body = i < warm ? `w${i}` : `m${i}`;
      sentAt.set(body, performance.now());
      void sender.send({ to: 'pace-r' }, body);
    },
  );
  await until('the benchmark step', () => latencies.length + warmLatencies.length >= warm + total, 30_000, 1);
  await profileStop('latency');
  const paused = gc.stop();
  emit('messaging.push_latency.p50', percentile(latencies, 50), 'ms');
  emit('messaging.push_latency.p99', percentile(latencies, 99), 'ms', nats.p99At2000);
  if (warm > 0) emit('messaging.push_latency.warmup_p99', percentile(warmLatencies, 99), 'ms');
  // The measuring process's own GC pauses meanwhile: what of the tail is the client's, not the tracker's.
  emit('messaging.push_latency.client_gc_pauses', paused.count, 'GCs');
  emit('messaging.push_latency.client_gc_ms', paused.ms, 'ms');
  const busy = (cpuSeconds(trackerPid) - cpu0) / ((performance.now() - t0) / 1000);
  log(
    `  ${total} messages at ${PACED_RATE}/s after ${warm} to warm up; max ${Math.max(...latencies).toFixed(2)} ms; tracker busy ${(busy * 100).toFixed(0)}% of a core (${((busy * 1e6) / PACED_RATE).toFixed(0)} µs CPU per message)`,
  );
  await Promise.all([sender.close(), recipient.close()]);
}

/** This process's GC pauses from now until `stop()`: how many, and their milliseconds. */
function gcPauses(): { stop(): { count: number; ms: number } } {
  let count = 0;
  let ms = 0;
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      count++;
      ms += e.duration;
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  return {
    stop() {
      // Entries still queued are delivered by takeRecords, not after disconnect.
      for (const e of observer.takeRecords()) {
        count++;
        ms += e.duration;
      }
      observer.disconnect();
      return { count, ms };
    },
  };
}

/** Runs `job` over `items`, `width` at a time (a thousand logins at once would measure the queue). */
async function inBatches<T>(items: T[], width: number, job: (item: T, i: number) => Promise<void>) {
  for (let i = 0; i < items.length; i += width)
    await Promise.all(items.slice(i, i + width).map((item, k) => job(item, i + k)));
}

/** Processes the fan-out's members are spread over (BENCH_FANOUT_PROCS; the sender stays here). */
const MEMBER_PROCS = Number(process.env.BENCH_FANOUT_PROCS ?? 2);

/** A process of group members (bench/_fanout-members.ts), spoken to over IPC. */
function memberProcess() {
  const script = fileURLToPath(new URL('./_fanout-members.ts', import.meta.url));
  const child = fork(script, [], {
    execArgv: [
      '--import',
      'tsx',
      // Dev aid: the members' processes profiled too (their whole life, connecting included).
      ...(PROF_PHASES === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', PROF_PHASES]),
    ],
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let deliveries = 0;
  const waiters: ((m: MembersReply) => void)[] = [];
  child.on('message', (m: MembersReply) => {
    if (m.type === 'progress') deliveries = m.deliveries;
    else waiters.shift()?.(m);
  });
  const ask = <T extends MembersReply>(m: MembersRequest) =>
    new Promise<T>((resolve) => {
      waiters.push(resolve as (r: MembersReply) => void);
      child.send(m);
    });
  return {
    pid: child.pid!,
    deliveries: () => deliveries,
    connect: (base: string, members: { name: string; token: string }[]) =>
      ask({ type: 'connect', base, members }),
    report: () => ask<Extract<MembersReply, { type: 'report' }>>({ type: 'report' }),
    async close() {
      const exited = new Promise((r) => child.once('exit', r));
      child.send({ type: 'close' });
      await exited;
    },
  };
}

/**
 * A group of `size` connected members (sessions); member 0 sends GROUP_RATE group messages/s
 * for GROUP_SECONDS; until every other member has each one (or 30 s). Per delivery: the time
 * from the send to its arrival at that member. The members other than the sender are in
 * MEMBER_PROCS processes of their own: a thousand clients on this process's event loop
 * would delay the arrivals they timestamp behind one another's parsing and acknowledgements,
 * and measure the load generator rather than the tracker. Both are stamped on the monotonic
 * clock every process shares.
 */
async function groupFanout(base: string, size: number) {
  const group = `fanout${size}`;
  const names = Array.from({ length: size }, (_, i) => `fan${size}-${i}`);
  const tokens: string[] = new Array(size);
  await inBatches(names, 50, async (n, i) => {
    tokens[i] = await userToken(base, n);
  });
  await api(base, 'POST', '/v1/groups', { groupId: group }, tokens[0]);
  await inBatches(names.slice(1), 50, async (n, i) => {
    await api(base, 'POST', `/v1/groups/${group}/join`, undefined, tokens[i + 1]);
    await api(base, 'POST', `/v1/groups/${group}/requests/${n}/accept`, undefined, tokens[0]);
  });
  const offset = sharedClockOffset();
  const sentAt: number[] = [];
  const sender = await SessionClient.connect(base, names[0]!, tokens[0]!, FAST_CLIENT);
  const procs = Array.from({ length: Math.min(MEMBER_PROCS, size - 1) }, memberProcess);
  await Promise.all(
    procs.map((p, k) =>
      p.connect(
        base,
        names
          .map((name, i) => ({ name, token: tokens[i]! }))
          .filter((_, i) => i > 0 && i % procs.length === k),
      ),
    ),
  );
  const total = GROUP_RATE * GROUP_SECONDS;
  // Messages 0 … warm - 1 warm up (timed apart); warm … warm + total - 1 are measured.
  const warm = Math.round(GROUP_RATE * WARMUP_SECONDS);
  const { cpu0, counts0, own0, members0, t0 } = await pacedSends(
    GROUP_RATE,
    warm,
    total,
    async () => {
      await profileStart();
      traceStart();
      return {
        cpu0: cpuSeconds(trackerPid),
        counts0: wakeCounts(trackerPid),
        own0: process.cpuUsage(),
        members0: procs.map((p) => cpuSeconds(p.pid)),
        t0: performance.now(),
      };
    },
    (i) => {
      sentAt[i] = performance.now() + offset;
      void sender.send({ groupId: group }, `g${size}-${i}`);
    },
  );
  const expected = (warm + total) * (size - 1);
  const delivered = () => procs.reduce((n, p) => n + p.deliveries(), 0);
  await until('every member has every message', () => delivered() >= expected, 30_000, 5).catch(() => {});
  const cpu = cpuSeconds(trackerPid) - cpu0;
  const counts1 = wakeCounts(trackerPid);
  const own = process.cpuUsage(own0);
  const membersCpu = procs.reduce((n, p, k) => n + cpuSeconds(p.pid) - members0[k]!, 0);
  await profileStop(`fanout${size}`);
  const trace = await traceReport(trackerChild!);
  const latencies: number[] = [];
  const warmLatencies: number[] = [];
  let ackFrames = 0;
  /** Per measured message (index - warm), the last arrival at any member. */
  const last: number[] = new Array(total).fill(Number.NaN);
  for (const r of await Promise.all(procs.map((p) => p.report()))) {
    ackFrames += r.ackFrames;
    for (let k = 0; k < r.index.length; k++) {
      const i = r.index[k]!;
      const at = r.at[k]!;
      if (i < warm) {
        warmLatencies.push(at - sentAt[i]!);
        continue;
      }
      latencies.push(at - sentAt[i]!);
      if (!(last[i - warm]! >= at)) last[i - warm] = at;
    }
  }
  const seconds = (Math.max(...last.filter((t) => !Number.isNaN(t)), t0 + offset) - (t0 + offset)) / 1000;
  const lost = expected - latencies.length - warmLatencies.length;
  const perMember = latencies.length / (size - 1) / Math.max(seconds, 1e-3);
  const spans = sentAt.slice(warm).map((t, i) => last[i]! - t);
  // Dev aid: BENCH_FANOUT_SPANS=FILE writes each message's span (send to its last member), in send order.
  if (process.env.BENCH_FANOUT_SPANS !== undefined)
    writeFileSync(process.env.BENCH_FANOUT_SPANS, spans.map((v) => v.toFixed(1)).join('\n'));
  // Flat within 20 % (issue 20): each group size's rate per member beside the first size's of this run.
  fanoutBase ??= Number(perMember.toFixed(3));
  emit(`messaging.fanout.${size}`, perMember, 'deliveries/s per member', fanoutBase);
  emit(`messaging.fanout.${size}.p50`, percentile(latencies, 50), 'ms');
  emit(`messaging.fanout.${size}.p99`, percentile(latencies, 99), 'ms', FANOUT_P99_TARGET_MS);
  if (warm > 0) emit(`messaging.fanout.${size}.warmup_p99`, percentile(warmLatencies, 99), 'ms');
  emit(`messaging.fanout.${size}.lost`, lost, 'deliveries');
  const perK = (n: number) => (n / Math.max(1, latencies.length)) * 1000;
  emit(`messaging.fanout.${size}.tracker_cpu_s_per_1k_deliveries`, perK(cpu), 'CPU-s');
  // The members' processes share the machine's cores with the tracker: their CPU is part of the latency.
  emit(`messaging.fanout.${size}.members_cpu_s_per_1k_deliveries`, perK(membersCpu), 'CPU-s');
  // What the members send back and what the sender hears of it: acknowledgements, and receipts.
  emit(`messaging.fanout.${size}.ack_frames_per_1k_deliveries`, perK(ackFrames), 'frames');
  // Frames: one per receipt, or one per commit of acknowledgements (the hello's receiptBatches).
  emit(
    `messaging.fanout.${size}.receipts_per_message`,
    // Over every message sent, the warm-up's too: the sender hears of them all.
    sender.receiptFrames / (warm + total),
    'receipt frames to the sender',
  );
  emit(
    `messaging.fanout.${size}.receipt_items_per_message`,
    sender.receipts.length / (warm + total),
    'receipts',
  );
  // Counts, not times: what the tracker did per 1,000 deliveries whatever the machine's load
  // (one write per member per message is the floor; the members' acks add reads).
  emit(
    `messaging.fanout.${size}.tracker_syscalls_per_1k_deliveries`,
    perK(counts1.syscalls - counts0.syscalls),
    'read+write calls',
  );
  emit(
    `messaging.fanout.${size}.tracker_wakeups_per_1k_deliveries`,
    perK(counts1.wakeups - counts0.wakeups),
    'voluntary context switches',
  );
  // Inside the tracker, from a message's send frame to its push to the last member: its CPU time
  // (what the machine's load moves least), the frames it read meanwhile, and its GC pauses.
  for (const [name, unit] of [
    ['cpuMsToLastPush', 'tracker CPU-ms'],
    ['cpuMsToFirstPush', 'tracker CPU-ms'],
    ['cpuMsPushLoop', 'tracker CPU-ms'],
    ['wallMsToLastPush', 'ms'],
    ['acksReadBetween', 'ack frames'],
    ['gcMsBetween', 'ms'],
  ] as const) {
    emit(`messaging.fanout.${size}.tracker.${name}.p50`, trace[`${name}.p50`] ?? Number.NaN, unit);
    emit(`messaging.fanout.${size}.tracker.${name}.p99`, trace[`${name}.p99`] ?? Number.NaN, unit);
  }
  if (size === 100) emit('messaging.group100.fanout.p99', percentile(spans, 99), 'ms');
  log(
    `  ${total} group messages to ${size} members at ${GROUP_RATE}/s: ${latencies.length} of ${expected} deliveries in ${seconds.toFixed(2)} s; ` +
      `until the last member: p50 ${percentile(spans, 50).toFixed(2)} ms, p99 ${percentile(spans, 99).toFixed(2)} ms; ` +
      `CPU-s: tracker ${cpu.toFixed(2)}, the ${size - 1} members (${procs.length} processes) ${membersCpu.toFixed(2)}, ` +
      `the sender (this process) ${((own.user + own.system) / 1e6).toFixed(2)}; load ${loadavg()[0]!.toFixed(1)}`,
  );
  await Promise.all([sender.close(), ...procs.map((p) => p.close())]);
}

/** 100,000 messages wait for an offline user; it connects; until it has them all (and said so). */
async function catchUp(base: string): Promise<void> {
  const [st, rt] = await Promise.all([userToken(base, 'cu-s'), userToken(base, 'cu-r')]);
  const sender = await SessionClient.connect(base, 'cu-s', st, FAST_CLIENT);
  let next = 0;
  const worker = async () => {
    while (next < CATCHUP) {
      next++;
      await sender.send({ to: 'cu-r' }, `catch-up message ${next}`);
    }
  };
  await Promise.all(Array.from({ length: WINDOW }, worker));
  await sender.close();
  let count = 0;
  const cpu0 = cpuSeconds(trackerPid);
  const own0 = process.cpuUsage();
  const t0 = performance.now();
  const recipient = await SessionClient.connect(base, 'cu-r', rt, {
    ...FAST_CLIENT,
    onMessages: (items) => {
      count += items.length;
    },
  });
  await until('the benchmark step', () => count >= CATCHUP, 60_000, 1);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds(trackerPid) - cpu0;
  const own = process.cpuUsage(own0);
  emit('messaging.catchup.100k', seconds, 's');
  emit('messaging.catchup.100k.tracker_cpu_s', cpu, 'CPU-s');
  emit('messaging.catchup.100k.client_cpu_s', (own.user + own.system) / 1e6, 'CPU-s');
  log(`  ${count} messages caught up in ${seconds.toFixed(2)} s (synced: ${recipient.synced})`);
  await recipient.close();
}

const root = mkdtempSync(join(tmpdir(), 'coterie-bench-msg-'));
const { url, child } = await startTrackerProcess(join(root, 'tracker'));
trackerPid = child.pid!;
trackerStdin = child.stdin!;
trackerChild = child;
try {
  log(`tracker ${url} on ${join(root, 'tracker', 'tracker.db')}`);
  const only = process.env.BENCH_ONLY?.split(',');
  const want = (part: string) => only === undefined || only.includes(part);
  if (want('max')) {
    log('send → delivered, max');
    await sendToDelivered(url);
  }
  if (want('latency')) {
    log('push latency, paced');
    await pushLatency(url);
  }
  if (want('fanout')) {
    for (const size of FANOUT_SIZES) {
      log(`group fan-out, ${size} members`);
      await groupFanout(url, size);
    }
  }
  if (want('catchup')) {
    log('catch-up of 100,000');
    await catchUp(url);
  }
} finally {
  child.stdin!.end();
  await new Promise((r) => child.once('exit', r));
  rmSync(root, { recursive: true, force: true });
}
