import pg from 'pg';
import { createStepBackoff } from '../../core/index.js';
import { CoterieError } from '../../protocol/errors.js';
import type { PgHost } from './pg-hosts.js';

/**
 * Which host of a multi-host store URL is the primary, and a connection pool
 * to it. A host is the primary when `pg_is_in_recovery()` is false (libpq's
 * `target_session_attrs=read-write`). When a query on the pool fails as a
 * failover fails (the connection lost, the server read-only or shutting
 * down), the pool is dropped and the hosts are tried again, with a bounded
 * backoff, until one of them is the primary. Meanwhile requests wait a few
 * seconds for it, then get UNAVAILABLE with a retry hint: never a hang.
 *
 * No consensus of our own: PostgreSQL's replication and its failover tool
 * (pg_auto_failover, Patroni) decide who is primary; we only find it.
 */

/** How a write acknowledged by the primary is kept, read from the primary's settings. */
export interface ReplicationInfo {
  synchronousStandbyNames: string;
  synchronousCommit: string;
  /** Standbys streaming synchronously when this was read. */
  syncStandbys: number;
  /** `several-machines`: a commit waits for a synchronous standby (PostgreSQL's own guarantee). */
  acknowledgedOn: 'one-machine' | 'several-machines';
}

export interface PrimaryStatus {
  /** A primary is known and its pool open. */
  ready: boolean;
  /** `host:port` of the primary. */
  primary?: string;
  replication?: ReplicationInfo;
  /** The primary's connection pool: open connections, idle ones, and queries waiting for one. */
  pool?: { total: number; idle: number; waiting: number };
}

export interface PrimaryConnection {
  pool: pg.Pool;
  host: PgHost;
  /** Changes every time a primary is (re)found: a failure on an older one does not drop a newer. */
  generation: number;
}

export interface PrimaryLocator {
  /** The current primary, waiting for one up to `waitMs`; UNAVAILABLE after that. */
  current(): Promise<PrimaryConnection>;
  /** Something failed as a failover does on `generation`'s primary: find the primary again. */
  suspect(generation: number): void;
  status(): PrimaryStatus;
  close(): Promise<void>;
}

export interface PrimaryLocatorOptions {
  hosts: PgHost[];
  /** Refuse a primary whose commits do not wait for a synchronous standby. */
  requireSyncStandby: boolean;
  /** Connections per pool. */
  poolSize: number;
  /** How long a caller waits for a primary before UNAVAILABLE. */
  waitMs?: number;
  log: (level: 'info' | 'warn' | 'error', fields: Record<string, unknown>, message: string) => void;
}

/** A probe of one host gives up after this long (a host that does not answer is skipped). */
const PROBE_TIMEOUT_MS = 3_000;
/**
 * Pauses between rounds over the hosts: short first (a promotion takes seconds), then 1 s, so
 * that a tracker serves within about a second of the promotion (a round costs one connection
 * per host; pg_auto_failover's tuned failover takes 4–6 s, and a 2 s pause made it up to 2.4 s later).
 */
const SEARCH_BACKOFF = createStepBackoff({ stepsMs: [0, 100, 250, 500, 1000], jitter: 0.2 });
const DEFAULT_WAIT_MS = 5_000;
/** A request's wait for a primary: what the retry hint says to wait before trying again. */
const RETRY_AFTER_SECONDS = 1;
/** Synchronous commit levels under which a commit waits for the standby (`local`, `off` do not). */
const WAITS_FOR_STANDBY = new Set(['on', 'remote_write', 'remote_apply']);

/**
 * `standby`: not a host to write to. libpq's target_session_attrs=read-write also passes over a
 * server whose sessions are read-only: pg_auto_failover makes a standby being promoted so
 * (default_transaction_read_only) until the old primary is known demoted.
 */
const PROBE_SQL = `SELECT pg_is_in_recovery() OR current_setting('transaction_read_only')::bool AS standby,
  current_setting('synchronous_standby_names') AS names,
  current_setting('synchronous_commit') AS commit,
  (SELECT count(*) FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum'))::int AS sync`;

interface Probe {
  standby: boolean;
  replication: ReplicationInfo;
}

/**
 * The options every connection of the tracker sends: with --require-sync-standby a commit
 * waits for the standby's flush, whatever the server's default `synchronous_commit` says.
 */
export function sessionOptions(requireSyncStandby: boolean): string | undefined {
  return requireSyncStandby ? '-c synchronous_commit=on' : undefined;
}

export async function probeHost(host: PgHost, requireSyncStandby = false): Promise<Probe> {
  const options = sessionOptions(requireSyncStandby);
  const client = new pg.Client({
    connectionString: host.url,
    connectionTimeoutMillis: PROBE_TIMEOUT_MS,
    query_timeout: PROBE_TIMEOUT_MS,
    application_name: 'coterie-probe',
    ...(options === undefined ? {} : { options }),
  });
  client.on('error', () => {});
  try {
    await client.connect();
    const r = await client.query<{ standby: boolean; names: string; commit: string; sync: number }>(
      PROBE_SQL,
    );
    const row = r.rows[0]!;
    const names = row.names.trim();
    return {
      standby: row.standby,
      replication: {
        synchronousStandbyNames: names,
        synchronousCommit: row.commit,
        syncStandbys: row.sync,
        acknowledgedOn:
          names !== '' && WAITS_FOR_STANDBY.has(row.commit) ? 'several-machines' : 'one-machine',
      },
    };
  } finally {
    await client.end().catch(() => {});
  }
}

export function createPrimaryLocator(options: PrimaryLocatorOptions): PrimaryLocator {
  const { hosts, log } = options;
  const waitMs = options.waitMs ?? DEFAULT_WAIT_MS;
  const names = hosts.map((h) => h.name).join(', ');
  let current: (PrimaryConnection & { replication: ReplicationInfo }) | undefined;
  let searching: Promise<void> | undefined;
  let generation = 0;
  let closed = false;
  /** Why each host was passed over in the last round. */
  const passedOver = new Map<string, string>();

  const unavailable = () =>
    new CoterieError(
      'UNAVAILABLE',
      `the store has no primary answering among ${names} (a failover?): try again in ${RETRY_AFTER_SECONDS} s`,
      { details: { retryAfterSeconds: RETRY_AFTER_SECONDS } },
    );

  async function tryHost(host: PgHost): Promise<boolean> {
    let probe: Probe;
    try {
      probe = await probeHost(host, options.requireSyncStandby);
    } catch (err) {
      passedOver.set(host.name, (err as Error).message || 'no answer');
      return false;
    }
    if (probe.standby) {
      passedOver.set(host.name, 'a standby (in recovery or read-only)');
      return false;
    }
    if (options.requireSyncStandby && probe.replication.acknowledgedOn === 'one-machine') {
      passedOver.set(host.name, 'a primary without a synchronous standby (--require-sync-standby)');
      log(
        'error',
        { host: host.name, ...probe.replication },
        'primary refused: its commits wait for no standby',
      );
      return false;
    }
    const opts = sessionOptions(options.requireSyncStandby);
    const pool = new pg.Pool({
      connectionString: host.url,
      max: options.poolSize,
      connectionTimeoutMillis: 10_000,
      // Named, so that an operator (and the failover test) sees which server the writes go to.
      application_name: 'coterie-store',
      // A dead host must fail queries, not hold them: keepalives notice a vanished peer.
      keepAlive: true,
      ...(opts === undefined ? {} : { options: opts }),
    });
    // A connection dropped by the server (restart, failover) must not crash the tracker: queries on it fail.
    pool.on('error', () => {});
    generation++;
    current = { pool, host, generation, replication: probe.replication };
    passedOver.clear();
    log('info', { primary: host.name, generation, ...probe.replication }, 'store primary found');
    return true;
  }

  function search(): Promise<void> {
    searching ??= (async () => {
      for (let round = 0; !closed; round++) {
        const pause = SEARCH_BACKOFF.delayMs(round);
        if (pause > 0) await new Promise((r) => setTimeout(r, pause).unref());
        for (const host of hosts) {
          if (closed) return;
          if (await tryHost(host)) return;
        }
        if (round % 10 === 0) {
          log('warn', { hosts: names, passedOver: Object.fromEntries(passedOver) }, 'no store primary yet');
        }
      }
    })().finally(() => {
      searching = undefined;
    });
    return searching;
  }

  return {
    async current() {
      if (current !== undefined) return current;
      if (closed) throw new CoterieError('UNAVAILABLE', 'the store is closed');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        search(),
        new Promise<void>((r) => {
          timer = setTimeout(r, waitMs);
        }),
      ]);
      clearTimeout(timer);
      if (current !== undefined) return current;
      throw unavailable();
    },
    suspect(gen) {
      if (current === undefined || current.generation !== gen || closed) return;
      const old = current;
      current = undefined;
      log(
        'warn',
        { primary: old.host.name, generation: gen },
        'store primary lost: looking for the primary again',
      );
      void old.pool.end().catch(() => {});
      void search();
    },
    status() {
      if (current === undefined) return { ready: false };
      const { pool } = current;
      return {
        ready: true,
        primary: current.host.name,
        replication: current.replication,
        pool: { total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount },
      };
    },
    async close() {
      closed = true;
      await searching?.catch(() => {});
      const c = current;
      current = undefined;
      await c?.pool.end().catch(() => {});
    },
  };
}

/**
 * Waits for the first primary at start. A URL none of whose hosts answers fails at once (a typo,
 * a server down), as does a primary refused by --require-sync-standby (no wait helps). Hosts
 * that answer as standbys (a failover under way, or a URL that lists only standbys) are waited
 * on, without end: `onWaiting` is told why first (the tracker answers /readyz meanwhile).
 */
export async function firstPrimary(
  locator: PrimaryLocator,
  hosts: PgHost[],
  requireSyncStandby: boolean,
  onWaiting: (reason: string) => Promise<void> = async () => {},
): Promise<void> {
  const why: string[] = [];
  // Standbys answering: one may be promoted (a failover under way). A primary refused: no wait helps.
  let answered = false;
  let refused = false;
  let primary = false;
  for (const host of hosts) {
    try {
      const p = await probeHost(host, requireSyncStandby);
      answered = true;
      primary ||= !p.standby;
      refused ||= requireSyncStandby && !p.standby && p.replication.acknowledgedOn === 'one-machine';
      why.push(
        `${host.name}: ${p.standby ? 'a standby' : `a primary, acknowledged writes on ${p.replication.acknowledgedOn}`}`,
      );
    } catch (err) {
      why.push(`${host.name}: ${(err as Error).message || 'no answer'}`);
    }
  }
  if (answered && !refused && !primary) await onWaiting(`no primary yet among ${why.join('; ')}`);
  while (answered && !refused) {
    try {
      await locator.current();
      return;
    } catch {
      // Still none: the locator keeps looking (and logs which hosts it passed over).
    }
  }
  if (requireSyncStandby)
    why.push('--require-sync-standby wants a primary whose commits wait for a synchronous standby');
  throw new CoterieError(
    'UNAVAILABLE',
    `no usable primary among ${hosts.map((h) => h.name).join(', ')}: ${why.join('; ')}`,
  );
}
