import type { Logger } from 'pino';
import type { ClusterMember } from '../../protocol/api.js';

/**
 * Spreading peers over a cluster's trackers (issue 22). Peers pick a tracker
 * at start by the power of two choices (peer/tracker/pool.ts), but they pick
 * on load figures that lag a heartbeat, and a tracker that restarts comes back
 * empty. So every tracker compares its own session count (live) with the
 * cluster's mean (the others' from their heartbeat rows) and, when it is far
 * above it, asks some of its sessions to move to the trackers below it.
 *
 * Each tracker sheds only its own excess, half of it per round, and waits a
 * round after moving so the others' rows show the arrivals: trackers acting on
 * the same figures at once shed together exactly the deficit, and figures
 * read between a move and the next beat over-shoot by at most half a step,
 * which the next rounds take back. No coordination, no oscillation.
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
 * Which of this tracker's sessions to move where: none, or `count` sessions to
 * each tracker below the mean, in proportion to how far below it is.
 */
export function planMoves(
  self: string,
  ownSessions: number,
  members: readonly ClusterMember[],
  options: RebalanceOptions,
): Move[] {
  const loads = members.map((m) => ({
    url: m.url,
    self: m.trackerId === self,
    sessions: m.trackerId === self ? ownSessions : m.sessions,
  }));
  if (loads.length < 2 || !loads.some((l) => l.self)) return [];
  const mean = loads.reduce((sum, l) => sum + l.sessions, 0) / loads.length;
  const excess = ownSessions - mean;
  const lowest = Math.min(...loads.map((l) => l.sessions));
  const unbalanced = ownSessions > mean * (1 + options.tolerance) || lowest < mean * (1 - options.tolerance);
  if (!unbalanced || excess < options.minExcess) return [];
  const below = loads.filter((l) => !l.self && l.sessions < mean);
  const deficit = below.reduce((sum, l) => sum + (mean - l.sessions), 0);
  const count = Math.ceil(excess / 2);
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

/** Runs planMoves every round, and rests a round after moving sessions. */
export function startRebalancer(deps: RebalancerDeps): { stop(): void } {
  let resting = false;
  const timer = setInterval(() => {
    if (resting) {
      resting = false;
      return;
    }
    const moves = planMoves(deps.trackerId, deps.sessions(), deps.members(), deps.options);
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
