import { readFileSync } from 'node:fs';

/**
 * The fields of /proc/PID/stat after the command name, from field 3 (the state) on: index k is
 * field k + 3 of proc(5).
 */
function statFields(pid: number): string[] {
  return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
}

/** CPU seconds (user + system) a process has used so far: robust where wall time is not (a shared machine). */
export function cpuSeconds(pid: number): number {
  const fields = statFields(pid);
  // utime and stime are fields 14 and 15 of /proc/PID/stat, in clock ticks (100 per second on Linux).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * System calls (reads and writes, /proc/PID/io) and voluntary context switches (wake-ups,
 * /proc/PID/status) a process has made so far: how many per message tells batching apart
 * from the work per message (a process that wakes for every few messages pays per wake-up).
 */
export function wakeCounts(pid: number): { syscalls: number; wakeups: number; faults: number } {
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  const field = (text: string, name: string) =>
    Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return {
    syscalls: field(io, 'syscr') + field(io, 'syscw'),
    wakeups: field(status, 'voluntary_ctxt_switches'),
    // Minor page faults (field 10 of /proc/PID/stat): fresh memory touched, each one zeroed by the
    // kernel (and, in a VM, often backed by the host first), a cost apart from the work itself.
    faults: Number(statFields(pid)[7]),
  };
}

/**
 * A local PostgreSQL's CPU over a run, by kind of process: `backends`, the client backends (the
 * trackers' store and bus connections: the work the sends ask for), and `background`, the rest
 * (autovacuum workers, checkpointer, WAL writer, …, and processes that ended meanwhile, counted
 * through the postmaster's reaped children). An autovacuum of the messages table landing in a
 * run costs with the table's size, not with the run's messages: told apart, it no longer reads
 * as a per-message cost.
 */
export interface PgCpu {
  total: number;
  backends: number;
  background: number;
}

/** Reads a PostgreSQL's CPU before and after a run: `stop()` gives the seconds its processes used meanwhile. */
export interface PgCpuClock {
  stop(): Promise<PgCpu>;
}

type Querier = { query<R>(sql: string): Promise<{ rows: R[] }> };

/** Clock ticks reaped from ended children (cutime + cstime of /proc/PID/stat), in seconds. */
function reapedSeconds(pid: number): number {
  const fields = statFields(pid);
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

/** The postmaster of a backend (its parent), from /proc/PID/stat. */
function parentOf(pid: number): number {
  return Number(statFields(pid)[1]);
}

interface PgSample {
  /** Per process: CPU seconds so far and whether it is a client backend. */
  processes: Map<number, { seconds: number; client: boolean }>;
  /** The postmaster's CPU so far plus its reaped children's (undefined: not on this machine). */
  postmaster: number | undefined;
}

/** CPU seconds so far of each process of a local PostgreSQL (pg_stat_activity lists its backends, WAL writer, checkpointer…). */
async function pgProcessCpu(client: Querier): Promise<PgSample> {
  const { rows } = await client.query<{ pid: number; backend_type: string }>(
    'SELECT pid, backend_type FROM pg_stat_activity',
  );
  const processes = new Map<number, { seconds: number; client: boolean }>();
  let postmaster: number | undefined;
  for (const { pid, backend_type } of rows) {
    try {
      processes.set(pid, { seconds: cpuSeconds(pid), client: backend_type === 'client backend' });
      if (postmaster === undefined) {
        const pm = parentOf(pid);
        postmaster = cpuSeconds(pm) + reapedSeconds(pm);
      }
    } catch {
      // Ended meanwhile, or the server is not on this machine.
    }
  }
  return { processes, postmaster };
}

/**
 * Starts counting a local PostgreSQL's CPU: at `stop()`, each live process's seconds since the
 * start (all of them for one started meanwhile), and the ended ones' through the postmaster.
 */
export async function startPgCpuClock(client: Querier): Promise<PgCpuClock> {
  const before = await pgProcessCpu(client);
  return {
    async stop() {
      const after = await pgProcessCpu(client);
      let backends = 0;
      let others = 0;
      for (const [pid, p] of after.processes) {
        const s = p.seconds - (before.processes.get(pid)?.seconds ?? 0);
        if (p.client) backends += s;
        else others += s;
      }
      // Ended meanwhile: what the postmaster reaped (its own CPU too, small).
      const reaped =
        before.postmaster !== undefined && after.postmaster !== undefined
          ? Math.max(0, after.postmaster - before.postmaster)
          : 0;
      return { total: backends + others + reaped, backends, background: others + reaped };
    },
  };
}
