import { readFileSync } from 'node:fs';

/** CPU seconds (user + system) a process has used so far: robust where wall time is not (a shared machine). */
export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // utime and stime are fields 14 and 15 of /proc/PID/stat, in clock ticks (100 per second on Linux).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * System calls (reads and writes, /proc/PID/io) and voluntary context switches (wake-ups,
 * /proc/PID/status) a process has made so far: how many per message tells batching apart
 * from the work per message (a process that wakes for every few messages pays per wake-up).
 */
export function wakeCounts(pid: number): { syscalls: number; wakeups: number } {
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  const field = (text: string, name: string) =>
    Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return {
    syscalls: field(io, 'syscr') + field(io, 'syscw'),
    wakeups: field(status, 'voluntary_ctxt_switches'),
  };
}

/** Reads a PostgreSQL's CPU before and after a run: `stop()` gives the seconds its processes used meanwhile. */
export interface PgCpuClock {
  stop(): Promise<number>;
}

type Querier = { query<R>(sql: string): Promise<{ rows: R[] }> };

/** CPU seconds so far of each process of a local PostgreSQL (pg_stat_activity lists its backends, WAL writer, checkpointer…). */
async function pgProcessCpu(client: Querier): Promise<Map<number, number>> {
  const { rows } = await client.query<{ pid: number }>('SELECT pid FROM pg_stat_activity');
  const seconds = new Map<number, number>();
  for (const { pid } of rows) {
    try {
      seconds.set(pid, cpuSeconds(pid));
    } catch {
      // Ended meanwhile, or the server is not on this machine.
    }
  }
  return seconds;
}

/**
 * Starts counting a local PostgreSQL's CPU: at `stop()`, each live process's seconds since the
 * start (all of them for one started meanwhile). A process that ended meanwhile is not counted:
 * measure over a run whose connections stay open.
 */
export async function startPgCpuClock(client: Querier): Promise<PgCpuClock> {
  const before = await pgProcessCpu(client);
  return {
    async stop() {
      let sum = 0;
      for (const [pid, s] of await pgProcessCpu(client)) sum += s - (before.get(pid) ?? 0);
      return sum;
    },
  };
}
