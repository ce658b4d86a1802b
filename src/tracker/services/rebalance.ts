import type { Logger } from 'pino';
import type { ClusterMember } from '../../protocol/api.js';

/**
 * Spreading peers over a cluster's trackers (issue 22). Peers pick a tracker
 * at start by the power of two choices (peer/tracker/pool.ts), but they pick
 * on load figures that lag a heartbeat, and a tracker that restarts comes back
 * empty. So every tracker compares the session counts of the cluster's
 * heartbeat rows with their mean and, when it is the one far above it, asks
 * some of its sessions to move to the trackers below it.
 *
 * Only the tracker that is the most loaded sheds (ties: the lowest URL), its
 * whole excess at once, and it then rests a round so the rows show the
 * arrivals. Every figure, its own included, is the cluster's rows, which lag
 * by up to two beats: trackers deciding on the same rows agree on who the
 * most loaded one is. (Shedding on its own live count against the others'
 * lagging rows, every tracker above the mean at once, over-shot: right after
 * a hundred peers arrived each tracker saw the others' rows still at 0 and
 * sent a third of its peers away, seen in spread.test.ts.)
 */
export interface RebalanceOptions {
  /** A tracker sheds when above the mean by this fraction, or when another is below it by as much. */
  tolerance: number;
  /** …and only when at least this many sessions above the mean (small clusters stay put). */
  minExcess: number;
}

export interface Move {
  url: string;
  count: number;
}

/**
 * Which of this tracker's sessions to move where: none (balanced, or another
 * tracker is more loaded), or its excess over the mean, to each tracker below
 * the mean in proportion to how far below it is.
 */
export function planMoves(
  self: string,
  members: readonly ClusterMember[],
  options: RebalanceOptions,
): Move[] {
  const loads = members.map((m) => ({ url: m.url, self: m.trackerId === self, sessions: m.sessions }));
  if (loads.length < 2 || !loads.some((l) => l.self)) return [];
  const me = loads.find((l) => l.self)!;
  if (
    loads.some((l) => !l.self && (l.sessions > me.sessions || (l.sessions === me.sessions && l.url < me.url)))
  )
    return [];
  const mean = loads.reduce((sum, l) => sum + l.sessions, 0) / loads.length;
  const excess = me.sessions - mean;
  const lowest = Math.min(...loads.map((l) => l.sessions));
  const unbalanced = me.sessions > mean * (1 + options.tolerance) || lowest < mean * (1 - options.tolerance);
  if (!unbalanced || excess < options.minExcess) return [];
  const below = loads.filter((l) => !l.self && l.sessions < mean);
  const deficit = below.reduce((sum, l) => sum + (mean - l.sessions), 0);
  const count = Math.round(excess);
  // Largest remainder: each target's share of `count`, rounded so the shares add up to it.
  const shares = below.map((l) => {
    const exact = (count * (mean - l.sessions)) / deficit;
    return { url: l.url, count: Math.floor(exact), rest: exact - Math.floor(exact) };
  });
  let left = count - shares.reduce((sum, s) => sum + s.count, 0);
  for (const s of [...shares].sort((a, b) => b.rest - a.rest)) {
    if (left <= 0) break;
    s.count++;
    left--;
  }
  return shares.filter((s) => s.count > 0).map(({ url, count: n }) => ({ url, count: n }));
}

export interface RebalancerDeps {
  trackerId: string;
  /** The live trackers as of the last cluster beat. */
  members: () => ClusterMember[];
  sessions: () => number;
  /** Asks up to `count` sessions to move to `url`; returns how many were asked. */
  move: (count: number, url: string) => number;
  /** A round every this long (two cluster beats: the rows are fresh by then). */
  everyMs: number;
  options: RebalanceOptions;
  logger: Logger;
}

/**
 * Runs planMoves every round. A plan is carried out only when the round before
 * planned to move too: the rows lag by up to two beats, and tracker by tracker
 * by a different amount, so a figure must hold for a round before sessions move
 * on it (right after a hundred peers arrived, a tracker still read the others'
 * rows at 0 from before, and sent a third of its peers away). After moving it
 * rests a round, so the rows show the arrivals.
 */
export function startRebalancer(deps: RebalancerDeps): { stop(): void } {
  let resting = false;
  let plannedBefore = false;
  const timer = setInterval(() => {
    if (resting) {
      resting = false;
      return;
    }
    const moves = planMoves(deps.trackerId, deps.members(), deps.options);
    const confirmed = plannedBefore;
    plannedBefore = moves.length > 0;
    if (!confirmed || moves.length === 0) return;
    plannedBefore = false;
    let asked = 0;
    for (const m of moves) asked += deps.move(m.count, m.url);
    if (asked > 0) {
      resting = true;
      deps.logger.info(
        { moves, sessions: deps.sessions() },
        'asked sessions to move to less loaded trackers',
      );
    }
  }, deps.everyMs);
  // Rebalancing must not keep a process alive on its own.
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
