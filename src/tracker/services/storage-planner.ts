import type { Logger } from 'pino';
import { type DropOrder, planPlacement, type ReplicateOrder } from '../../core/index.js';
import type { StorageOrderItem } from '../events/index.js';
import type { ServiceDeps } from './context.js';
import { createDirtyGroups } from './storage-dirty.js';
import {
  backoffsOf,
  delistUnheld,
  FETCH_STALL_MS,
  filesToPlace,
  policyOf,
  replicasOf,
  storagePeersOf,
} from './storage-state.js';
import { takeLease } from './store-lease.js';

/**
 * The placement loop (issue 16). One tracker of a cluster plans at a time:
 * it holds the `planner` lease row, renewed at each run and taken over by
 * another tracker once expired. A run plans each group in one transaction
 * (read the state, apply the plan), so a tracker dying mid-run leaves every
 * group as it was or fully planned; the orders go out on the bus after the
 * commit, to whichever tracker holds each storage peer's session (a lost push
 * is sent again after the peer's next hello or complete report).
 *
 * Runs soon after a change (offers, reports, policy, the files of a group,
 * members) and on a timer, and plans only the groups that changed
 * (storage-dirty.ts: bus events, storage peers connecting, leaving or out of
 * their grace, fetch back-offs ending); every group is planned when this
 * tracker takes the lease and every `fullSweepMs` besides, a safety net for
 * a change no event named (an assignment past its deadline, say).
 */
export interface StoragePlanner {
  start(): void;
  /** Plans now (when this tracker holds the lease); resolves when done. */
  runNow(): Promise<void>;
  stop(): Promise<void>;
}

export interface StoragePlannerOptions {
  trackerId: string;
  storageGraceMs: number;
  /** An assignment without progress for this long is placed elsewhere (default FETCH_STALL_MS). */
  fetchStallMs?: number;
  /** Timer period; default a quarter of the grace, within 100 ms … 5 s. */
  intervalMs?: number;
  logger: Logger;
  /** Files below `min`, over every group (as each was last planned). */
  onUnderReplicated?: (files: number) => void;
  /** Every group is planned this often, changed or not; default 60 s. */
  fullSweepMs?: number;
  /** Told each group as it is planned (tests: an unchanged group is not). */
  onGroupPlanned?: (groupId: string) => void;
}

const LEASE = 'planner';
/** Orders per bus event: NOTIFY payloads stay under 8000 bytes (an order is under 200). */
const ORDERS_PER_EVENT = 30;
/** Coalesces the events of one burst (a report with many groups, a share of many files). */
const DEBOUNCE_MS = 20;

export function createStoragePlanner(options: StoragePlannerOptions) {
  return (deps: ServiceDeps): StoragePlanner => {
    const { store, bus, now, logger } = { ...deps, logger: options.logger };
    const db = store.db;
    const intervalMs =
      options.intervalMs ?? Math.min(5000, Math.max(100, Math.floor(options.storageGraceMs / 4)));
    const leaseMs = Math.max(3 * intervalMs, 3000);
    const fullSweepMs = options.fullSweepMs ?? 60_000;
    const dirty = createDirtyGroups(db, options.storageGraceMs);
    const underByGroup = new Map<string, number>();
    /** Whether this tracker held the lease at its last run: taking it over plans every group. */
    let holding = false;
    let lastSweepAt = Number.NEGATIVE_INFINITY;
    let timer: NodeJS.Timeout | undefined;
    let debounce: NodeJS.Timeout | undefined;
    let running: Promise<void> | undefined;
    let again = false;
    let stopped = false;
    let unsubscribe: (() => void) | undefined;

    async function groupsToPlan(): Promise<string[]> {
      const withPolicy = await db
        .selectFrom('replication_policies')
        .select('group_id')
        .where('min_replicas', '>', 0)
        .execute();
      const withReplicas = await db.selectFrom('replicas').select('group_id').distinct().execute();
      return [...new Set([...withPolicy, ...withReplicas].map((r) => r.group_id))].sort();
    }

    /** Plans one group and applies the plan, in one transaction; returns its orders and files below min. */
    async function planGroup(groupId: string) {
      return store.transaction(async (trx) => {
        const t = now();
        const policy = await policyOf(trx, groupId);
        const peers = await storagePeersOf(trx, groupId, t, options.storageGraceMs);
        const backoffs = await backoffsOf(trx, groupId, t);
        const plan = planPlacement(
          policy,
          peers,
          await filesToPlace(trx, groupId),
          await replicasOf(trx, groupId, { now: t, stallMs: options.fetchStallMs ?? FETCH_STALL_MS }),
          backoffs.blocked,
        );
        for (const d of plan.drop) {
          await trx
            .deleteFrom('replicas')
            .where('group_id', '=', groupId)
            .where('file_id', '=', d.fileId)
            .where('peer_id', '=', d.peerId)
            .execute();
        }
        // A file nobody shares whose last copy was dropped leaves the listing.
        const delisted = await delistUnheld(trx, groupId, [...new Set(plan.drop.map((d) => d.fileId))]);
        for (const o of plan.replicate) {
          await trx
            .insertInto('replicas')
            .values({
              group_id: groupId,
              file_id: o.fileId,
              peer_id: o.peerId,
              state: 'assigned',
              updated_at: t,
            })
            .onConflict((oc) => oc.columns(['group_id', 'file_id', 'peer_id']).doNothing())
            .execute();
        }
        // A withdrawing peer with nothing left to hand over: its offer ends.
        const drained = peers.filter((p) => p.withdrawing).map((p) => p.peerId);
        if (drained.length > 0) {
          await trx
            .deleteFrom('storage_offers')
            .where('group_id', '=', groupId)
            .where('peer_id', 'in', drained)
            .where(({ not, exists, selectFrom }) =>
              not(
                exists(
                  selectFrom('replicas')
                    .select('replicas.peer_id')
                    .whereRef('replicas.group_id', '=', 'storage_offers.group_id')
                    .whereRef('replicas.peer_id', '=', 'storage_offers.peer_id'),
                ),
              ),
            )
            .execute();
        }
        // Live peers were seen now: their grace, should they leave, starts from here.
        const live = peers.filter((p) => p.state === 'live').map((p) => p.peerId);
        if (live.length > 0) {
          await trx
            .updateTable('storage_offers')
            .set({ last_seen: t })
            .where('group_id', '=', groupId)
            .where('peer_id', 'in', live)
            .execute();
        }
        return { plan, under: plan.underReplicated.length, delisted, nextRetryAt: backoffs.nextRetryAt };
      });
    }

    async function push(groupId: string, replicate: ReplicateOrder[], drop: DropOrder[]) {
      const byPeer = new Map<string, StorageOrderItem[]>();
      const add = (peerId: string, item: StorageOrderItem) => {
        const list = byPeer.get(peerId);
        if (list === undefined) byPeer.set(peerId, [item]);
        else list.push(item);
      };
      for (const d of drop) add(d.peerId, { t: 'd', g: groupId, f: d.fileId, r: d.reason });
      for (const o of replicate) add(o.peerId, { t: 'r', g: groupId, f: o.fileId, s: o.size });
      const at = now();
      for (const [peerId, orders] of byPeer) {
        for (let i = 0; i < orders.length; i += ORDERS_PER_EVENT) {
          await bus.publish({
            kind: 'storage_orders',
            peerId,
            orders: orders.slice(i, i + ORDERS_PER_EVENT),
            at,
          });
        }
      }
    }

    /** Storage peers connected now were seen now: their grace, should they leave, starts from here. */
    async function refreshLive(t: number): Promise<void> {
      await db
        .updateTable('storage_offers')
        .set({ last_seen: t })
        .where(({ exists, selectFrom }) =>
          exists(
            selectFrom('presence as p')
              .select('p.peer_id')
              .whereRef('p.peer_id', '=', 'storage_offers.peer_id')
              .whereRef('p.user_id', '=', 'storage_offers.user_id'),
          ),
        )
        .execute();
    }

    async function runOnce(): Promise<void> {
      if (!(await takeLease(db, LEASE, options.trackerId, now(), leaseMs))) {
        holding = false;
        return;
      }
      const t = now();
      // Before the refresh: a peer whose session ended since the last run still reads as gone or in grace.
      const changed = await dirty.take(t);
      await refreshLive(t);
      const sweep = !holding || t - lastSweepAt >= fullSweepMs;
      holding = true;
      let groups = changed;
      if (sweep) {
        lastSweepAt = t;
        underByGroup.clear(); // a group that left the plans (no policy, no replicas) counts no more
        groups = [...new Set([...changed, ...(await groupsToPlan())])].sort();
      }
      for (const [i, groupId] of groups.entries()) {
        if (stopped) return;
        let planned: Awaited<ReturnType<typeof planGroup>>;
        try {
          planned = await planGroup(groupId);
        } catch (err) {
          // This group and the ones not reached yet are planned at the next run.
          for (const g of groups.slice(i)) dirty.mark(g);
          throw err;
        }
        const { plan, under, delisted, nextRetryAt } = planned;
        options.onGroupPlanned?.(groupId);
        underByGroup.set(groupId, under);
        if (nextRetryAt !== undefined) dirty.wakeAt(groupId, nextRetryAt);
        for (const fileId of delisted)
          await bus.publish({ kind: 'files_changed', groupId, fileId, at: now() });
        if (plan.replicate.length > 0 || plan.drop.length > 0) {
          logger.info(
            { groupId, replicate: plan.replicate.length, drop: plan.drop.length, deferred: plan.deferred },
            'storage placement planned',
          );
          await push(groupId, plan.replicate, plan.drop);
        }
      }
      options.onUnderReplicated?.([...underByGroup.values()].reduce((n, u) => n + u, 0));
    }

    function run(): Promise<void> {
      if (running !== undefined) {
        again = true;
        return running;
      }
      running = (async () => {
        do {
          again = false;
          try {
            await runOnce();
          } catch (err) {
            if (!stopped) logger.warn({ err }, 'storage placement failed; next run retries');
          }
        } while (again && !stopped);
      })().finally(() => {
        running = undefined;
      });
      return running;
    }

    function soon() {
      if (stopped || debounce !== undefined) return;
      debounce = setTimeout(() => {
        debounce = undefined;
        void run();
      }, DEBOUNCE_MS);
    }

    return {
      start() {
        unsubscribe = bus.subscribe((e) => {
          if (e.kind === 'storage_changed' || e.kind === 'files_changed' || e.kind === 'membership_changed') {
            dirty.mark(e.groupId);
            soon();
          }
        });
        timer = setInterval(() => void run(), intervalMs);
        timer.unref();
        soon();
      },
      runNow: run,
      async stop() {
        stopped = true;
        unsubscribe?.();
        if (timer !== undefined) clearInterval(timer);
        if (debounce !== undefined) clearTimeout(debounce);
        await running;
      },
    };
  };
}
