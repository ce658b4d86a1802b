import { describe, expect, it, vi } from 'vitest';
import type { ClusterMember } from '../../src/protocol/api.js';
import { planMoves, startRebalancer } from '../../src/tracker/services/rebalance.js';

const OPTIONS = { tolerance: 0.1, minExcess: 2 };
const member = (trackerId: string, sessions: number): ClusterMember => ({
  trackerId,
  url: `https://${trackerId}:7070`,
  sessions,
  requestsPerSecond: 0,
  startedAt: 1,
  heartbeatAt: 1,
});

/** Every tracker plans on the same figures; the moves applied; repeated until nobody moves. */
function settle(
  counts: Record<string, number>,
  rounds = 20,
): { counts: Record<string, number>; rounds: number } {
  const now = { ...counts };
  for (let round = 1; round <= rounds; round++) {
    const members = Object.entries(now).map(([id, n]) => member(id, n));
    const moves = Object.keys(now).flatMap((id) =>
      planMoves(id, members, OPTIONS).map((m) => ({ from: id, ...m })),
    );
    if (moves.length === 0) return { counts: now, rounds: round - 1 };
    for (const m of moves) {
      now[m.from]! -= m.count;
      now[new URL(m.url).hostname]! += m.count;
    }
  }
  return { counts: now, rounds };
}

describe('rebalancing plan', () => {
  it('moves nothing from a balanced cluster, a lone tracker, or a small excess', () => {
    expect(planMoves('a', [member('a', 34), member('b', 33), member('c', 33)], OPTIONS)).toEqual([]);
    expect(planMoves('a', [member('a', 50)], OPTIONS)).toEqual([]);
    // 3 peers on one of two trackers: 1 above the mean, under minExcess.
    expect(planMoves('a', [member('a', 2), member('b', 0)], OPTIONS)).toEqual([]);
    // Not listed (this tracker's own row not read yet): no plan.
    expect(planMoves('x', [member('a', 0), member('b', 0)], OPTIONS)).toEqual([]);
  });

  it('sheds its excess, to the trackers below the mean in proportion to their deficit', () => {
    // mean 30: a is 30 above → asks 30, split 20:10 between c (deficit 20) and b (deficit 10).
    const moves = planMoves('a', [member('a', 60), member('b', 20), member('c', 10)], OPTIONS);
    expect(moves).toEqual([
      { url: 'https://b:7070', count: 10 },
      { url: 'https://c:7070', count: 20 },
    ]);
  });

  it('lets only the most loaded tracker shed, so two never pour into one low tracker at once', () => {
    // b and a are both above the mean of 33; c's row is low. Only b (the most loaded) moves.
    const members = [member('a', 34), member('b', 37), member('c', 28)];
    expect(planMoves('a', members, OPTIONS)).toEqual([]);
    expect(planMoves('b', members, OPTIONS)).toEqual([{ url: 'https://c:7070', count: 4 }]);
    // A tie goes to the lower URL.
    const tied = [member('a', 50), member('b', 50), member('c', 0)];
    expect(planMoves('b', tied, OPTIONS)).toEqual([]);
    expect(planMoves('a', tied, OPTIONS)).not.toEqual([]);
  });

  it('brings a restarted tracker its share back, and every tracker within ±10 % of the mean', () => {
    const { counts, rounds } = settle({ a: 50, b: 50, c: 0 });
    expect(counts.a! + counts.b! + counts.c!).toBe(100);
    for (const n of Object.values(counts)) expect(Math.abs(n - 100 / 3)).toBeLessThanOrEqual(100 / 30 + 1);
    expect(rounds).toBeLessThanOrEqual(5);
  });

  it('spreads a herd that landed on one tracker, without oscillating', () => {
    const { counts, rounds } = settle({ a: 100, b: 0, c: 0, d: 0 });
    for (const n of Object.values(counts)) expect(n).toBeGreaterThanOrEqual(22);
    expect(rounds).toBeLessThan(20);
    // Settled: another round moves nothing.
    expect(settle(counts).rounds).toBe(0);
  });
});

describe('rebalancer rounds', () => {
  const silent = { info() {}, warn() {} } as unknown as import('pino').Logger;

  /** Runs the rebalancer of `a` over the figures given per round; returns the rounds in which it moved. */
  function rounds(figures: ClusterMember[][]): number[] {
    vi.useFakeTimers();
    try {
      let round = 0;
      const movedIn: number[] = [];
      const r = startRebalancer({
        trackerId: 'a',
        members: () => figures[Math.min(round, figures.length - 1)]!,
        sessions: () => 0,
        move: (count) => {
          movedIn.push(round);
          return count;
        },
        everyMs: 1000,
        options: OPTIONS,
        logger: silent,
      });
      for (round = 0; round < figures.length; round++) vi.advanceTimersByTime(1000);
      r.stop();
      return movedIn;
    } finally {
      vi.useRealTimers();
    }
  }

  it('moves only on figures that held for two rounds, then rests a round', () => {
    const stale = [member('a', 34), member('b', 0), member('c', 0)];
    const fresh = [member('a', 34), member('b', 33), member('c', 33)];
    // Others' rows at 0 for one round (written before their peers arrived): nothing moves.
    expect(rounds([stale, fresh, fresh, fresh])).toEqual([]);
    // Unbalanced for real: planned in round 0, moved in round 1 (both its moves), rested in round 2.
    const herd = [member('a', 60), member('b', 20), member('c', 10)];
    expect(rounds([herd, herd, herd])).toEqual([1, 1]);
  });
});
