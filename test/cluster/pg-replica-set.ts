// A PostgreSQL primary with streaming standbys for the store failover tests,
// through scripts/pg-replica-set.sh (free loopback ports, a temporary
// directory, the postgres user when run as root).
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SCRIPT = join(import.meta.dirname, '../../scripts/pg-replica-set.sh');

/** Debian's PostgreSQL binaries, or any on PATH: the failover tests skip without them. */
export function havePostgresBinaries(): boolean {
  const debian = existsSync('/usr/lib/postgresql')
    ? readdirSync('/usr/lib/postgresql').some((v) => existsSync(`/usr/lib/postgresql/${v}/bin/pg_basebackup`))
    : false;
  return (
    debian ||
    (process.env.PATH ?? '').split(':').some((d) => d !== '' && existsSync(join(d, 'pg_basebackup')))
  );
}

export interface ReplicaSet {
  dir: string;
  /** `127.0.0.1:PORT` of node n0 (the first primary), n1, n2. */
  host(node: string): string;
  /** A store URL of these nodes, in this order. */
  url(nodes: string[]): string;
  kill(node: string): Promise<void>;
  promote(node: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startReplicaSet(standbys: 1 | 2, mode: 'sync' | 'async' = 'sync'): Promise<ReplicaSet> {
  const { stdout } = await run('bash', [SCRIPT, 'start', String(standbys), mode], { timeout: 120_000 });
  const dir = stdout.trim().split('\n')[1]!;
  const ports = new Map(
    readFileSync(join(dir, 'nodes'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(' ') as [string, string]),
  );
  const host = (node: string) => `127.0.0.1:${ports.get(node)}`;
  return {
    dir,
    host,
    url: (nodes) =>
      `postgres://postgres@${nodes.map(host).join(',')}/coterie_test?target_session_attrs=read-write`,
    kill: async (node) => {
      await run('bash', [SCRIPT, 'kill', dir, node], { timeout: 30_000 });
    },
    promote: async (node) => {
      await run('bash', [SCRIPT, 'promote', dir, node], { timeout: 90_000 });
    },
    stop: async () => {
      await run('bash', [SCRIPT, 'stop', dir], { timeout: 60_000 }).catch(() => {});
    },
  };
}
