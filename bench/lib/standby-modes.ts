// The cost of synchronous replication for `npm run bench -- cluster` (part `standby`): one
// PostgreSQL primary with one streaming standby (scripts/pg-replica-set.sh, fsync on), the
// standby made synchronous or not by the primary's synchronous_standby_names alone, so that
// the two figures differ by nothing else: same servers, same WAL stream, same run.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const SCRIPT = fileURLToPath(new URL('../../scripts/pg-replica-set.sh', import.meta.url));

export type StandbyMode = 'sync' | 'async';

export interface StandbyPair {
  /** A single-host URL of the primary's `postgres` database (for CREATE DATABASE). */
  adminUrl: string;
  /** Makes the standby synchronous (a commit waits for its flush) or not, and waits until it is so. */
  setMode(mode: StandbyMode): Promise<void>;
  stop(): void;
}

export function startStandbyPair(): StandbyPair {
  const out = execFileSync('bash', [SCRIPT, 'start', '1', 'sync'], {
    env: { ...process.env, PG_TEST_FSYNC: 'on' },
  })
    .toString()
    .trim()
    .split('\n');
  const dir = out[1]!;
  const port = /^n0 (\d+)$/m.exec(readFileSync(join(dir, 'nodes'), 'utf8'))![1];
  const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
  return {
    adminUrl,
    async setMode(mode) {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      try {
        await c.query(
          `ALTER SYSTEM SET synchronous_standby_names = '${mode === 'sync' ? 'ANY 1 (n1)' : ''}'`,
        );
        await c.query('SELECT pg_reload_conf()');
        const want = mode === 'sync' ? 'quorum' : 'async';
        for (let i = 0; ; i++) {
          const r = await c.query<{ s: string; names: string }>(
            "SELECT (SELECT string_agg(sync_state, ',') FROM pg_stat_replication) AS s, current_setting('synchronous_standby_names') AS names",
          );
          if (r.rows[0]!.s === want) return;
          if (i > 200) throw new Error(`standby not ${want} after 20 s: ${JSON.stringify(r.rows[0])}`);
          await new Promise((res) => setTimeout(res, 100));
        }
      } finally {
        await c.end();
      }
    },
    stop: () => {
      execFileSync('bash', [SCRIPT, 'stop', dir]);
    },
  };
}
