import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type PlacedFile,
  type PlacementPlan,
  planPlacement,
  type ReplicaInfo,
  type ReplicationPolicy,
  rankPeers,
  type StoragePeerInfo,
} from '../../src/core/placement.js';

const hex = (prefix: string, i: number) => `${prefix}${i.toString(16).padStart(8, '0')}`.padEnd(64, '0');
const peer = (i: number, over: Partial<StoragePeerInfo> = {}): StoragePeerInfo => ({
  peerId: hex('p', i),
  zone: '',
  quotaBytes: 1e12,
  state: 'live',
  withdrawing: false,
  ...over,
});
const file = (i: number, size = 100): PlacedFile => ({ fileId: hex('f', i), size });

/** The replicas after the plan ran: drops removed, assignments added as `as`. */
function apply(
  replicas: ReplicaInfo[],
  plan: PlacementPlan,
  as: 'held' | 'assigned' = 'held',
): ReplicaInfo[] {
  const dropped = new Set(plan.drop.map((d) => `${d.fileId}/${d.peerId}`));
  return [
    ...replicas.filter((r) => !dropped.has(`${r.fileId}/${r.peerId}`)),
    ...plan.replicate.map((o) => ({ fileId: o.fileId, peerId: o.peerId, state: as })),
  ];
}

/** Plans and applies until a plan is empty; fails if that takes more rounds than levels. */
function settle(
  policy: ReplicationPolicy,
  peers: StoragePeerInfo[],
  files: PlacedFile[],
  start: ReplicaInfo[] = [],
): ReplicaInfo[] {
  let replicas = start;
  for (let round = 0; round < policy.max + 3; round++) {
    const plan = planPlacement(policy, peers, files, replicas);
    if (plan.replicate.length === 0 && plan.drop.length === 0) return replicas;
    replicas = apply(replicas, plan);
  }
  throw new Error('placement did not settle');
}

const holders = (replicas: ReplicaInfo[], fileId: string) =>
  replicas
    .filter((r) => r.fileId === fileId)
    .map((r) => r.peerId)
    .sort();

const world = fc
  .record({
    peers: fc.integer({ min: 1, max: 8 }),
    zones: fc.integer({ min: 1, max: 4 }),
    files: fc.integer({ min: 1, max: 30 }),
    min: fc.integer({ min: 0, max: 4 }),
    extra: fc.integer({ min: 0, max: 2 }),
    quota: fc.integer({ min: 100, max: 3000 }),
    seed: fc.integer({ min: 0, max: 1000 }),
  })
  .map((w) => ({
    policy: { min: w.min, max: w.min + w.extra },
    peers: Array.from({ length: w.peers }, (_, i) =>
      peer(i + w.seed * 16, { zone: `z${i % w.zones}`, quotaBytes: w.quota }),
    ),
    files: Array.from({ length: w.files }, (_, i) => file(i + w.seed * 64, 50 + ((i * 37) % 200))),
  }));

describe('replica placement (properties)', () => {
  it('never puts two replicas on one peer nor overflows a quota, and settles to an empty plan', () => {
    fc.assert(
      fc.property(world, ({ policy, peers, files }) => {
        const replicas = settle(policy, peers, files);
        const keys = replicas.map((r) => `${r.fileId}/${r.peerId}`);
        expect(new Set(keys).size).toBe(keys.length);
        for (const p of peers) {
          const used = replicas
            .filter((r) => r.peerId === p.peerId)
            .reduce((n, r) => n + files.find((f) => f.fileId === r.fileId)!.size, 0);
          expect(used).toBeLessThanOrEqual(p.quotaBytes);
        }
        for (const f of files) expect(holders(replicas, f.fileId).length).toBeLessThanOrEqual(policy.max);
        const again = planPlacement(policy, peers, files, replicas);
        expect(again.replicate).toEqual([]);
        expect(again.drop).toEqual([]);
      }),
      { numRuns: 150 },
    );
  });

  it('reaches min on distinct zones while there are enough zones and room', () => {
    fc.assert(
      fc.property(world, ({ policy, peers, files }) => {
        const roomy = peers.map((p) => ({ ...p, quotaBytes: 1e12 }));
        const replicas = settle(policy, roomy, files);
        const zones = new Set(roomy.map((p) => p.zone)).size;
        for (const f of files) {
          const on = holders(replicas, f.fileId);
          expect(on.length).toBe(Math.min(policy.min, roomy.length));
          const used = new Set(on.map((id) => roomy.find((p) => p.peerId === id)!.zone));
          expect(used.size).toBe(Math.min(on.length, zones));
        }
      }),
      { numRuns: 150 },
    );
  });

  it('adding or removing one peer moves only the files whose placement involves it', () => {
    fc.assert(
      fc.property(world, fc.nat(), ({ policy, peers, files }, which) => {
        // One zone and room for everything: placement is rendezvous alone.
        const flat = peers.map((p) => ({ ...p, zone: '', quotaBytes: 1e12 }));
        const withAll = settle(policy, flat, files);
        const gone = flat[which % flat.length]!;
        const without = settle(
          policy,
          flat.filter((p) => p !== gone),
          files,
        );
        for (const f of files) {
          const a = holders(withAll, f.fileId);
          const b = holders(without, f.fileId);
          if (!a.includes(gone.peerId)) expect(b).toEqual(a);
          else expect(b.filter((p) => !a.includes(p)).length).toBeLessThanOrEqual(1);
        }
        // Incrementally, a peer joining a group settled at min moves nothing at all.
        if (flat.length - 1 < policy.min) return;
        const joined = planPlacement(policy, flat, files, without);
        expect(joined.replicate).toEqual([]);
        expect(joined.drop).toEqual([]);
      }),
      { numRuns: 150 },
    );
  });

  it('hands out nothing more while the assignments it made are being fetched', () => {
    fc.assert(
      fc.property(world, ({ policy, peers, files }) => {
        const plan = planPlacement(policy, peers, files, []);
        const pending = apply([], plan, 'assigned');
        const again = planPlacement(policy, peers, files, pending);
        expect(again.replicate).toEqual([]);
        expect(again.drop).toEqual([]);
      }),
      { numRuns: 150 },
    );
  });
});

describe('replica placement (examples)', () => {
  const five = Array.from({ length: 5 }, (_, i) => peer(i));
  const files = Array.from({ length: 40 }, (_, i) => file(i));
  const policy = { min: 3, max: 3 };

  it('with two peers killed at once, brings every file to 2 before any to 3', () => {
    const settled = settle(policy, five, files);
    const dead = new Set([five[0]!.peerId, five[1]!.peerId]);
    const after = five.map((p) => (dead.has(p.peerId) ? { ...p, state: 'gone' as const } : p));
    const first = planPlacement(policy, after, files, settled);
    const atOne = first.underReplicated.filter((u) => u.verified === 1).map((u) => u.fileId);
    expect(atOne.length).toBeGreaterThan(0);
    expect(first.replicate.every((o) => o.level === 1)).toBe(true);
    expect(first.replicate.map((o) => o.fileId).sort()).toEqual(atOne.sort());
    expect(first.deferred).toBeGreaterThan(0);
    // While those are fetched, nothing is brought to 3.
    const fetching = apply(settled, first, 'assigned');
    expect(planPlacement(policy, after, files, fetching).replicate).toEqual([]);
    // Once held, the files at 2 get their third.
    const second = planPlacement(policy, after, files, apply(settled, first));
    expect(second.replicate.length).toBeGreaterThan(0);
    expect(second.replicate.every((o) => o.level === 2)).toBe(true);
    const final = settle(policy, after, files, apply(settled, first));
    for (const f of files) expect(holders(final, f.fileId).filter((p) => !dead.has(p)).length).toBe(3);
  });

  it('does not repair for a peer in its grace, and trims to max once a gone peer is back', () => {
    const settled = settle(policy, five, files);
    const grace = five.map((p, i) => (i === 0 ? { ...p, state: 'grace' as const } : p));
    const quiet = planPlacement(policy, grace, files, settled);
    expect(quiet.replicate).toEqual([]);
    expect(quiet.drop).toEqual([]);
    const gone = five.map((p, i) => (i === 0 ? { ...p, state: 'gone' as const } : p));
    const repaired = settle(policy, gone, files, settled);
    expect(repaired.length).toBeGreaterThan(settled.length);
    const back = planPlacement(policy, five, files, repaired);
    expect(back.replicate).toEqual([]);
    expect(back.drop.length).toBe(repaired.length - files.length * 3);
    expect(back.drop.every((d) => d.reason === 'surplus')).toBe(true);
    // The copies kept are the best-ranked holders.
    const kept = apply(repaired, back);
    for (const f of files) {
      const on = holders(repaired, f.fileId);
      const best = rankPeers(f.fileId, five)
        .map((p) => p.peerId)
        .filter((p) => on.includes(p))
        .slice(0, 3)
        .sort();
      expect(holders(kept, f.fileId)).toEqual(best);
    }
  });

  it('replaces a corrupt replica on another peer and drops it', () => {
    const settled = settle(policy, five, files);
    const bad = settled[0]!;
    const reported = settled.map((r) => (r === bad ? { ...r, state: 'corrupt' as const } : r));
    const plan = planPlacement(policy, five, files, reported);
    expect(plan.drop).toEqual([{ fileId: bad.fileId, peerId: bad.peerId, reason: 'corrupt' }]);
    expect(plan.replicate).toHaveLength(1);
    expect(plan.replicate[0]).toMatchObject({ fileId: bad.fileId, level: 2 });
    expect(plan.replicate[0]!.peerId).not.toBe(bad.peerId);
  });

  it('moves a withdrawing peer’s replicas before dropping them', () => {
    const settled = settle(policy, five, files);
    const leaving = five.map((p, i) => (i === 2 ? { ...p, withdrawing: true } : p));
    const first = planPlacement(policy, leaving, files, settled);
    const itsFiles = settled.filter((r) => r.peerId === five[2]!.peerId).map((r) => r.fileId);
    expect(first.drop).toEqual([]);
    expect(first.replicate.map((o) => o.fileId).sort()).toEqual(itsFiles.sort());
    expect(first.replicate.every((o) => o.peerId !== five[2]!.peerId)).toBe(true);
    const second = planPlacement(policy, leaving, files, apply(settled, first));
    expect(second.replicate).toEqual([]);
    expect(second.drop.map((d) => d.fileId).sort()).toEqual(itsFiles.sort());
    expect(second.drop.every((d) => d.reason === 'withdrawn' && d.peerId === five[2]!.peerId)).toBe(true);
  });

  it('skips a full peer, drops replicas of unlisted files and of peers no longer offering', () => {
    const small = [peer(1, { quotaBytes: 150 }), peer(2), peer(3)];
    const plan = planPlacement({ min: 3, max: 3 }, small, [file(1, 100), file(2, 100)], []);
    const onSmall = plan.replicate.filter((o) => o.peerId === small[0]!.peerId);
    expect(onSmall).toHaveLength(1);
    expect(plan.underReplicated).toHaveLength(2);
    const stale = planPlacement(
      { min: 1, max: 1 },
      [peer(2)],
      [file(1)],
      [
        { fileId: file(9).fileId, peerId: peer(2).peerId, state: 'held' },
        { fileId: file(1).fileId, peerId: peer(7).peerId, state: 'held' },
      ],
    );
    expect(stale.drop.map((d) => d.reason).sort()).toEqual(['unlisted', 'unoffered']);
  });

  it('places nothing and drops everything under the default policy (min 0)', () => {
    const settled = settle(policy, five, files);
    const plan = planPlacement({ min: 0, max: 0 }, five, files, settled);
    expect(plan.replicate).toEqual([]);
    expect(plan.drop).toHaveLength(settled.length);
  });
});
