// A pg_auto_failover formation (a monitor and two or three data nodes) on
// loopback, through scripts/pg-auto-failover.sh: for the store failover test
// and bench/failover.ts. Also a watcher that samples every node and says
// whether a tracker's connection was ever on a server that was not the
// writable primary.
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('../../scripts/pg-auto-failover.sh', import.meta.url));

/** pg_autoctl and PostgreSQL 15 are installed (Debian's pg-auto-failover-cli, postgresql-15-auto-failover). */
export function havePgAutoFailover(): boolean {
  try {
    execFileSync('pg_autoctl', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export interface Formation {
  dir: string;
  /** What `pg_autoctl show uri --formation default` printed, with the user added (it prints none). */
  url: string;
  /** Data node names: n1 (the first primary), n2, n3. */
  nodes: string[];
  /** `127.0.0.1:PORT` of a data node. */
  host(node: string): string;
  /** SIGKILL a node's pg_autoctl, postgres and backends (a machine that dies). */
  kill(node: string): Promise<void>;
  /** Run a killed node's pg_autoctl again: it rejoins as a standby. */
  rejoin(node: string): Promise<void>;
  /** Waits until one node is primary and the others secondaries; the primary's name. */
  settled(): Promise<string>;
  state(): Promise<string>;
  stop(): Promise<void>;
}

export async function startFormation(dataNodes: 2 | 3 = 2): Promise<Formation> {
  const { stdout } = await run('bash', [SCRIPT, 'start', String(dataNodes)], { timeout: 240_000 });
  const [uri, dir] = stdout.trim().split('\n') as [string, string];
  const ports = new Map(
    readFileSync(join(dir, 'nodes'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(' ') as [string, string]),
  );
  const script = (args: string[], timeout: number) => run('bash', [SCRIPT, ...args], { timeout });
  return {
    dir,
    url: uri.replace(/^postgres(ql)?:\/\//, 'postgres://postgres@'),
    nodes: [...ports.keys()].filter((n) => n !== 'monitor'),
    host: (node) => `127.0.0.1:${ports.get(node)}`,
    kill: async (node) => {
      await script(['kill', dir, node], 30_000);
    },
    rejoin: async (node) => {
      await script(['rejoin', dir, node], 30_000);
    },
    settled: async () => (await script(['wait', dir, String(ports.size - 1)], 150_000)).stdout.trim(),
    state: async () => (await script(['state', dir], 30_000)).stdout,
    stop: async () => {
      await script(['stop', dir], 60_000).catch(() => {});
    },
  };
}

/** Connections a tracker opens to write (its pool, LISTEN and NOTIFY), by application_name. */
const TRACKER_WRITERS = `application_name = 'coterie-store' OR application_name LIKE 'coterie-listen-%'
  OR application_name LIKE 'coterie-notify-%'`;

export interface WritableWatch {
  /** Each node's last sample: `primary` (writable), `standby` (in recovery or read-only), `down`. */
  roles(): Map<string, 'primary' | 'standby' | 'down'>;
  /** When each node was last seen turn writable (ms since the epoch). */
  writableSince(node: string): number | undefined;
  /** Samples where a tracker's connection was on a node that was not writable. */
  violations(): string[];
  samples(): number;
  stop(): Promise<void>;
}

/**
 * Samples every data node every `everyMs`: whether it is writable (neither in recovery nor
 * read-only, as a tracker's probe asks) and, in the same query, the tracker connections on it.
 * A tracker connection on a node that is not writable is a violation: a tracker wrote, or was
 * ready to write, to a standby.
 */
export function watchWritable(f: Formation, everyMs = 100): WritableWatch {
  const roles = new Map<string, 'primary' | 'standby' | 'down'>();
  const since = new Map<string, number>();
  const violations: string[] = [];
  let samples = 0;
  let stopped = false;
  const sample = async (node: string) => {
    const c = new pg.Client({
      connectionString: `postgres://postgres@${f.host(node)}/postgres`,
      connectionTimeoutMillis: 1_000,
      query_timeout: 1_000,
      application_name: 'coterie-test-watch',
    });
    c.on('error', () => {});
    try {
      await c.connect();
      const r = await c.query<{ writable: boolean; writers: string[] }>(
        `SELECT NOT (pg_is_in_recovery() OR current_setting('transaction_read_only')::bool) AS writable,
           ARRAY(SELECT application_name FROM pg_stat_activity WHERE ${TRACKER_WRITERS}) AS writers`,
      );
      const { writable, writers } = r.rows[0]!;
      if (writable && roles.get(node) !== 'primary') since.set(node, Date.now());
      roles.set(node, writable ? 'primary' : 'standby');
      if (!writable && writers.length > 0) {
        violations.push(`${new Date().toISOString()} ${node} (a standby): ${writers.join(', ')}`);
      }
    } catch {
      roles.set(node, 'down');
    } finally {
      await c.end().catch(() => {});
    }
  };
  const loop = (async () => {
    while (!stopped) {
      const started = Date.now();
      await Promise.all(f.nodes.map(sample));
      samples++;
      await new Promise((r) => setTimeout(r, Math.max(0, everyMs - (Date.now() - started))));
    }
  })();
  return {
    roles: () => new Map(roles),
    writableSince: (node) => since.get(node),
    violations: () => [...violations],
    samples: () => samples,
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}
