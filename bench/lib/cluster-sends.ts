// cluster.send.Nt (bench/cluster.ts): durable direct messages over real sessions, as peers send
// them. SENDERS users, each connected to one of the N trackers (user i to tracker i mod N, as a
// user's peer holds one session), each with WINDOW sends in flight to one reader. The old form
// (one HTTP request per message from 48 autocannon connections, every user's requests spread
// over every tracker) could not show a cluster: 48 requests in flight over a commit of a few
// milliseconds cap the rate whatever the trackers do, 24 users at the per-user limit cap it at
// 24,000/s, and one user's stream written through three trackers at once makes their
// commits take turns on the stream's row (see docs/cluster.md, "Throughput").
import pg from 'pg';
import { cpuSeconds, startPgCpuClock, wakeCounts } from './cpu.js';
import { request, userToken } from './http.js';
import { SessionClient } from './session-client.js';

/** Users sending (each under the tracker's per-user limit of 1,000/s: 64 of them cap the rate at 64,000/s). */
export const SENDERS = Number(process.env.BENCH_SENDERS ?? 64);
/** Sends in flight per user: 64 × 16 = 1,024 in flight over the cluster. */
export const WINDOW = Number(process.env.BENCH_WINDOW ?? 16);
/** Below the per-user limit (1,000/s sustained, a burst of 2,000), so that the limit never answers. */
const PER_USER_MAX_RATE = 900;

export interface SendRun {
  /** Sends answered `sent`, per second of the run. */
  rate: number;
  seconds: number;
  /** Sends made and answered `sent` (message ids: the store is checked against them). */
  answered: Set<string>;
  failed: number;
  /** CPU-seconds of all trackers together per 1,000 answered sends. */
  trackerCpuPer1k: number;
  /** CPU-seconds of the PostgreSQL server's processes per 1,000 answered sends (a local server). */
  pgCpuPer1k: number;
  /** Of which the client backends (the trackers' connections), and the rest (autovacuum, checkpoints, WAL writer…). */
  pgBackendCpuPer1k: number;
  pgBackgroundCpuPer1k: number;
  /**
   * Rows of `messages` PostgreSQL read by sequential scans, per message sent (pg_stat_user_tables;
   * a send should probe by key, never scan: a count that moves with plans, not with the load).
   */
  messagesScannedPerMessage: number;
  /** CPU-seconds of this process (the senders' sessions) per 1,000 answered sends. */
  clientCpuPer1k: number;
  /** Messages per write transaction over the run, all trackers together (their /metrics). */
  batchMean: number;
  /** The trackers' read and write system calls per message, all together. */
  trackerSyscallsPerMessage: number;
  /** The trackers' voluntary context switches (wake-ups) per 1,000 messages, all together. */
  trackerWakeupsPer1k: number;
}

/** The trackers' group commit batches so far: messages written and transactions, summed. */
async function batchTotals(urls: string[]): Promise<{ messages: number; batches: number }> {
  let messages = 0;
  let batches = 0;
  for (const url of urls) {
    const { text } = await request(url, 'GET', '/metrics');
    messages += Number(/^coterie_message_batch_size_sum (\S+)$/m.exec(text)?.[1] ?? 0);
    batches += Number(/^coterie_message_batch_size_count (\S+)$/m.exec(text)?.[1] ?? 0);
  }
  return { messages, batches };
}

/**
 * Rows of `messages` read by sequential scans so far. `settled`: first waits out the backends'
 * statistics flush (at most once a second while busy), so that the run's last scans count.
 */
async function messagesScanned(c: pg.Client, settled = false): Promise<number> {
  if (settled) await new Promise((r) => setTimeout(r, 1500));
  await c.query('SELECT pg_stat_clear_snapshot()');
  const { rows } = await c.query<{ n: string | null }>(
    "SELECT seq_tup_read AS n FROM pg_stat_user_tables WHERE relname = 'messages'",
  );
  return Number(rows[0]?.n ?? 0);
}

export interface SendCluster {
  /** Sends `perSender` messages from every sender with client ids `${prefix}-…`; measured. */
  run(prefix: string, perSender: number): Promise<SendRun>;
  close(): Promise<void>;
}

/** Opens every sender's session (user `s<i>` on tracker i mod N) and the reader's account. `pgUrl`: the store, whose CPU is read too. */
export async function connectSenders(
  trackers: { url: string; pid: number }[],
  pgUrl: string,
): Promise<SendCluster> {
  const n = trackers.length;
  await userToken(trackers[0]!.url, 'sink');
  const senders: SessionClient[] = [];
  for (let i = 0; i < SENDERS; i++) {
    const base = trackers[i % n]!.url;
    const token = await userToken(base, `s${i}`);
    senders.push(await SessionClient.connect(base, `s${i}`, token, { validate: false }));
  }
  const trackerCpu = () => trackers.reduce((s, t) => s + cpuSeconds(t.pid), 0);
  const trackerWakes = () =>
    trackers
      .map((t) => wakeCounts(t.pid))
      .reduce((a, b) => ({
        syscalls: a.syscalls + b.syscalls,
        wakeups: a.wakeups + b.wakeups,
        faults: a.faults + b.faults,
      }));
  return {
    async run(prefix, perSender) {
      const answered = new Set<string>();
      let failed = 0;
      const pgClient = new pg.Client({ connectionString: pgUrl });
      await pgClient.connect();
      const scanned0 = await messagesScanned(pgClient);
      const pgCpu = await startPgCpuClock(pgClient);
      const batches0 = await batchTotals(trackers.map((t) => t.url));
      const client0 = process.cpuUsage();
      const cpu0 = trackerCpu();
      const wakes0 = trackerWakes();
      const t0 = performance.now();
      await Promise.all(
        senders.map(async (sender, i) => {
          let next = 0;
          // Paced under the per-user limit: a sender may not start its k-th send before k / PER_USER_MAX_RATE s.
          const worker = async () => {
            while (next < perSender) {
              const k = next++;
              const due = t0 + (k * 1000) / PER_USER_MAX_RATE;
              const wait = due - performance.now();
              if (wait > 1) await new Promise((r) => setTimeout(r, wait));
              try {
                const sent = await sender.send({ to: 'sink' }, `message ${k}`, `${prefix}-${i}-${k}`);
                answered.add(sent.messageId);
              } catch {
                failed++;
              }
            }
          };
          await Promise.all(Array.from({ length: WINDOW }, worker));
        }),
      );
      const seconds = (performance.now() - t0) / 1000;
      const cpu = trackerCpu() - cpu0;
      const wakes = trackerWakes();
      const client = process.cpuUsage(client0);
      const pgSeconds = await pgCpu.stop();
      const scanned = await messagesScanned(pgClient, true).finally(() => pgClient.end());
      const batches1 = await batchTotals(trackers.map((t) => t.url));
      const per1k = (seconds: number) => (seconds / Math.max(1, answered.size)) * 1000;
      return {
        rate: answered.size / seconds,
        seconds,
        answered,
        failed,
        trackerCpuPer1k: per1k(cpu),
        pgCpuPer1k: per1k(pgSeconds.total),
        pgBackendCpuPer1k: per1k(pgSeconds.backends),
        pgBackgroundCpuPer1k: per1k(pgSeconds.background),
        messagesScannedPerMessage: (scanned - scanned0) / Math.max(1, answered.size),
        clientCpuPer1k: per1k((client.user + client.system) / 1e6),
        trackerSyscallsPerMessage: (wakes.syscalls - wakes0.syscalls) / Math.max(1, answered.size),
        trackerWakeupsPer1k: per1k(wakes.wakeups - wakes0.wakeups),
        batchMean: (batches1.messages - batches0.messages) / Math.max(1, batches1.batches - batches0.batches),
      };
    },
    async close() {
      await Promise.all(senders.map((s) => s.close()));
    },
  };
}
