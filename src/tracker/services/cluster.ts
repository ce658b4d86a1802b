import type { ClusterMember } from '../../protocol/api.js';
import type { ClusterEvent } from '../../protocol/session.js';
import { databaseNowMs, toNumber } from '../store/index.js';
import type { ServiceDeps } from './context.js';

/**
 * Cluster membership. Every tracker writes a heartbeat row (its public URL
 * and load) every `heartbeatMs`; the live trackers are those whose row is
 * younger than `deadAfterMs`. Each tracker re-reads the rows at every beat
 * (and at once when another announces a join or leave on the bus) and tells
 * its peers when the set of live trackers changed.
 *
 * A tracker that stops beating (killed, frozen, cut off) drops out; the
 * presence rows it wrote (its peers' sessions) stay until those peers
 * register through another tracker or `presenceGraceMs` after it died, when
 * any live tracker reaps them (and says the seeders left).
 *
 * Clocks: on PostgreSQL the database's clock stamps and judges every row, so
 * the trackers' own clocks do not need to agree.
 */
export interface ClusterOptions {
  trackerId: string;
  /**
   * The URL peers reach this tracker at, with `#sha256=…` when its certificate
   * is self-signed: kept so in the row's url (no column of its own, so trackers
   * of an older version read the origin and ignore the rest) and listed as
   * url and fingerprint.
   */
  url: string;
  /** Where this tracker's built-in relay listens (host:port), listed with it. */
  relay?: string;
  heartbeatMs: number;
  deadAfterMs: number;
  presenceGraceMs: number;
}

export interface ClusterLoad {
  sessions: () => number;
  /** Requests served since start (a counter): the rate is taken between beats. */
  requestsServed: () => number;
}

export interface ClusterService {
  /** Writes the first heartbeat, announces the join, starts beating. */
  start(): Promise<void>;
  /** The live trackers, least loaded first, as of the last beat. */
  members(): ClusterMember[];
  /** Reads the live trackers now. */
  refresh(): Promise<ClusterMember[]>;
  /** Stops beating and removes this tracker's row (a clean leave). */
  stop(): Promise<void>;
}

/** Idempotency keys are kept this long: far beyond any client's retry window. */
const IDEMPOTENCY_RETENTION_MS = 24 * 3600 * 1000;
/** Housekeeping (old keys) every this many beats. */
const HOUSEKEEPING_EVERY_BEATS = 30;

/** A row's url, `origin#sha256=hex` or an origin, as the listing's url and fingerprint. */
function listedAddress(stored: string): { url: string; fingerprint?: string } {
  const m = /^(.*)#sha256=([0-9a-f]{64})$/.exec(stored);
  return m === null ? { url: stored } : { url: m[1]!, fingerprint: m[2]! };
}

/** The session push telling peers the live trackers (with the fingerprints they pin) and relays. */
export function clusterPush(members: readonly ClusterMember[], relays: string[], at: number): ClusterEvent {
  return {
    type: 'cluster',
    trackers: members.map(({ trackerId, url, fingerprint, sessions, requestsPerSecond }) => ({
      trackerId,
      url,
      ...(fingerprint === undefined ? {} : { fingerprint }),
      sessions,
      requestsPerSecond,
    })),
    relays,
    at,
  };
}

export function byLoad(a: ClusterMember, b: ClusterMember): number {
  return (
    a.sessions - b.sessions ||
    a.requestsPerSecond - b.requestsPerSecond ||
    (a.trackerId < b.trackerId ? -1 : a.trackerId > b.trackerId ? 1 : 0)
  );
}

export function createClusterService(options: ClusterOptions) {
  return (
    deps: ServiceDeps & {
      load: ClusterLoad;
      onMembersChanged: (members: ClusterMember[]) => void;
      onError: (err: unknown, what: string) => void;
    },
  ): ClusterService => {
    const { store, bus, load } = deps;
    const db = store.db;
    const clock = store.dialect === 'postgres' ? () => databaseNowMs(db) : async () => deps.now();
    let members: ClusterMember[] = [];
    let membershipKey = '';
    let timer: NodeJS.Timeout | undefined;
    let startedAt = 0;
    let lastBeat = { at: 0, requests: 0 };
    let beats = 0;
    let running: Promise<void> | undefined;
    let stopped = false;

    async function beat(): Promise<void> {
      const t = await clock();
      const served = load.requestsServed();
      const elapsed = t - lastBeat.at;
      const rps = lastBeat.at > 0 && elapsed > 0 ? ((served - lastBeat.requests) * 1000) / elapsed : 0;
      lastBeat = { at: t, requests: served };
      const row = {
        tracker_id: options.trackerId,
        url: options.url,
        started_at: startedAt,
        heartbeat_at: t,
        sessions: load.sessions(),
        requests_per_second: Math.round(Math.max(0, rps) * 10) / 10,
        relay: options.relay ?? null,
      };
      await db
        .insertInto('trackers')
        .values(row)
        .onConflict((oc) =>
          oc.column('tracker_id').doUpdateSet({
            url: row.url,
            started_at: row.started_at,
            heartbeat_at: row.heartbeat_at,
            sessions: row.sessions,
            requests_per_second: row.requests_per_second,
            relay: row.relay,
          }),
        )
        .execute();
      await read(t);
      await reap(t);
      if (++beats % HOUSEKEEPING_EVERY_BEATS === 0) {
        await db
          .deleteFrom('idempotency_keys')
          .where('created_at', '<', t - IDEMPOTENCY_RETENTION_MS)
          .execute();
      }
    }

    async function read(t: number): Promise<ClusterMember[]> {
      const rows = await db
        .selectFrom('trackers')
        .selectAll()
        .where('heartbeat_at', '>=', t - options.deadAfterMs)
        .execute();
      const list = rows
        .map((r) => ({
          trackerId: r.tracker_id,
          ...listedAddress(r.url),
          sessions: r.sessions,
          requestsPerSecond: r.requests_per_second,
          startedAt: toNumber(r.started_at),
          heartbeatAt: toNumber(r.heartbeat_at),
          ...(r.relay === null || r.relay === undefined ? {} : { relay: r.relay }),
        }))
        .sort(byLoad);
      members = list;
      const key = list
        // A restart (same id, new start) is a change too: the old incarnation is gone.
        .map((m) => `${m.trackerId}@${m.url}@${m.startedAt}`)
        .sort()
        .join(' ');
      if (key !== membershipKey) {
        membershipKey = key;
        deps.onMembersChanged(list);
      }
      return list;
    }

    /** Presence left by trackers dead for longer than the grace period: their peers did not come back. */
    async function reap(t: number): Promise<void> {
      const cutoff = t - options.deadAfterMs - options.presenceGraceMs;
      const dead = await db
        .selectFrom('presence as p')
        .leftJoin('trackers as tr', 'tr.tracker_id', 'p.tracker_id')
        .select('p.tracker_id')
        .distinct()
        .where('p.tracker_id', '!=', options.trackerId)
        .where((eb) =>
          eb.or([
            eb('tr.heartbeat_at', '<', cutoff),
            eb.and([eb('tr.tracker_id', 'is', null), eb('p.connected_at', '<', cutoff)]),
          ]),
        )
        .execute();
      for (const { tracker_id: id } of dead) {
        const files = await store.transaction(async (trx) => {
          const gone = await trx
            .selectFrom('presence_files')
            .select(['peer_id', 'file_id'])
            .where('tracker_id', '=', id)
            .execute();
          await trx.deleteFrom('presence_files').where('tracker_id', '=', id).execute();
          await trx.deleteFrom('presence').where('tracker_id', '=', id).execute();
          return gone;
        });
        for (const f of files) {
          await bus.publish({ kind: 'seeder_left', fileId: f.file_id, peerId: f.peer_id, at: t });
        }
      }
    }

    function schedule() {
      if (stopped) return;
      timer = setTimeout(() => {
        timer = undefined;
        runBeat();
      }, options.heartbeatMs);
      // The membership beat must not keep a process alive on its own.
      timer.unref();
    }

    function runBeat() {
      if (running !== undefined || stopped) return;
      running = beat()
        .catch((err: unknown) => deps.onError(err, 'cluster heartbeat'))
        .finally(() => {
          running = undefined;
          schedule();
        });
    }

    const unsubscribe = bus.subscribe((e) => {
      const heard =
        e.kind === 'events_lost' || (e.kind === 'cluster_changed' && e.trackerId !== options.trackerId);
      if (!heard || stopped) return;
      // Another tracker joined or left (or we may have missed it): read the rows now rather than at the next beat.
      void clock()
        .then(read)
        .catch((err: unknown) => deps.onError(err, 'cluster refresh'));
    });

    return {
      async start() {
        startedAt = await clock();
        await beat();
        await bus.publish({ kind: 'cluster_changed', trackerId: options.trackerId, at: startedAt });
        schedule();
      },
      members: () => members,
      refresh: async () => read(await clock()),
      async stop() {
        stopped = true;
        unsubscribe();
        if (timer !== undefined) clearTimeout(timer);
        await running;
        try {
          await db.deleteFrom('trackers').where('tracker_id', '=', options.trackerId).execute();
          await bus.publish({ kind: 'cluster_changed', trackerId: options.trackerId, at: deps.now() });
        } catch (err) {
          deps.onError(err, 'cluster leave');
        }
      },
    };
  };
}
