import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type BlockRequest,
  createScheduler,
  DEFAULT_SCHEDULER_OPTIONS,
  type Scheduler,
  type SchedulerOptions,
} from '../../src/core/scheduler.js';
import { PIECE_SERVER_DEFAULTS } from '../../src/wire/index.js';

const KiB = 1024;

function fakeClock(start = 1000) {
  let t = start;
  return {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
  };
}

function layout(count: number, pieceSize: number, lastSize = pieceSize) {
  return { count, length: (i: number) => (i === count - 1 ? lastSize : pieceSize) };
}

/** Seeded random so that tie-breaks are reproducible. */
function seeded(seed = 42) {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

function make(
  count: number,
  opts: Partial<SchedulerOptions> = {},
  have?: (i: number) => boolean,
  pieceSize = 64 * KiB,
) {
  const clock = fakeClock();
  const s = createScheduler({ blockSizeBytes: 16 * KiB, backoff: { jitter: 0, baseMs: 10 }, ...opts })({
    pieces: layout(count, pieceSize),
    clock,
    random: seeded(),
    ...(have ? { have } : {}),
  });
  return { s, clock };
}

type Behaviour = 'ok' | 'stall' | 'corrupt';
/** A peer's behaviour, or per piece. */
type PeerBehaviour = Behaviour | ((piece: number) => Behaviour);

/**
 * Plays the engine: answers every request at once (or never, for a stalling
 * peer), verifies complete attempts, advances the clock a little per round.
 */
function drive(
  s: Scheduler,
  clock: ReturnType<typeof fakeClock>,
  behaviour: Record<string, PeerBehaviour>,
  maxRounds = 10_000,
) {
  const log: BlockRequest[] = [];
  const cancels: BlockRequest[] = [];
  const verifiedBy = new Map<number, string>();
  /** "peer:piece" pairs struck so far, and requests made for a pair after its strike. */
  const struck = new Set<string>();
  const afterStrike: BlockRequest[] = [];
  for (let round = 0; round < maxRounds && !s.isComplete() && !s.failure(); round++) {
    const actions = s.poll();
    cancels.push(...actions.cancels);
    for (const r of actions.requests) {
      log.push(r);
      if (struck.has(`${r.peerId}:${r.piece}`)) afterStrike.push(r);
      const given = behaviour[r.peerId] ?? 'ok';
      const b = typeof given === 'function' ? given(r.piece) : given;
      if (b === 'stall') continue;
      const out = s.blockReceived(r.peerId, r.piece, r.offset, r.length);
      if (out.kind === 'accepted' && out.attemptComplete) {
        if (b === 'corrupt') {
          struck.add(`${r.peerId}:${r.piece}`);
          s.pieceCorrupt(r.peerId, r.piece);
        } else if (!s.isVerified(r.piece)) {
          s.pieceVerified(r.peerId, r.piece);
          verifiedBy.set(r.piece, r.peerId);
        }
      }
    }
    clock.advance(10);
  }
  cancels.push(...s.poll().cancels);
  return { log, cancels, verifiedBy, afterStrike };
}

describe('scheduler', () => {
  it('fetches every block of every piece from one peer, pipe bounded by its depth', () => {
    const { s, clock } = make(10, { initialDepthBlocks: 3 });
    s.addPeer('a', { score: 0.5 });
    s.setPeerPieces('a', () => true);
    const first = s.poll();
    expect(first.requests).toHaveLength(3);
    for (const r of first.requests) s.blockReceived('a', r.piece, r.offset, r.length);
    const { log } = drive(s, clock, {});
    expect(s.isComplete()).toBe(true);
    // 10 pieces × 4 blocks of 16 KiB, each requested exactly once.
    const keys = [...first.requests, ...log].map((r) => `${r.piece}:${r.offset}`);
    expect(new Set(keys).size).toBe(40);
    expect(keys).toHaveLength(40);
  });

  it('handles a short last piece and a zero-piece file', () => {
    const clock = fakeClock();
    const s = createScheduler({ blockSizeBytes: 16 * KiB })({ pieces: layout(3, 64 * KiB, 5000), clock });
    s.addPeer('a', { score: 1 });
    s.setPeerPieces('a', () => true);
    const { log } = drive(s, clock, {});
    const last = log.filter((r) => r.piece === 2);
    expect(last).toEqual([{ peerId: 'a', piece: 2, offset: 0, length: 5000 }]);
    const empty = createScheduler()({ pieces: layout(0, 64 * KiB), clock });
    expect(empty.isComplete()).toBe(true);
    expect(empty.poll().requests).toEqual([]);
  });

  it("keeps a peer's requests within what a piece server queues, however tiny a folder's pieces", () => {
    // 300 files of 300 bytes: a piece each, far shorter than a block. A pipe measured in bytes
    // alone asked for all 300 at once; the seeder refused those past 128 (BUSY), the peer backed
    // off and asked for as many again, and the folder never downloaded.
    const { s, clock } = make(300, { blockSizeBytes: 64 * KiB }, undefined, 300);
    s.addPeer('a', { score: 1 });
    s.setPeerPieces('a', () => true);
    const first = s.poll().requests;
    expect(first).toHaveLength(DEFAULT_SCHEDULER_OPTIONS.maxRequestsPerPeer);
    expect(DEFAULT_SCHEDULER_OPTIONS.maxRequestsPerPeer).toBe(
      PIECE_SERVER_DEFAULTS.maxQueuedRequestsPerConnection,
    );
    for (const r of first) s.blockReceived('a', r.piece, r.offset, r.length);
    for (const r of first) s.pieceVerified('a', r.piece);
    const { log } = drive(s, clock, { a: 'ok' });
    expect(s.isComplete()).toBe(true);
    expect(new Set([...first, ...log].map((r) => r.piece)).size).toBe(300);
  });

  it('picks the rarest pieces first', () => {
    const { s } = make(6, { initialDepthBlocks: 4 });
    s.addPeer('a', { score: 0.5 });
    s.addPeer('b', { score: 0.5 });
    s.setPeerPieces('a', () => true);
    s.setPeerPieces('b', (i) => i < 5); // piece 5 only at a: the rarest
    const { requests } = s.poll();
    const aPieces = new Set(requests.filter((r) => r.peerId === 'a').map((r) => r.piece));
    expect(aPieces.has(5)).toBe(true);
  });

  it('assigns by α·score − β·load/threshold and caps each peer near its fair share', () => {
    const { s, clock } = make(40, { initialDepthBlocks: 4, alpha: 1, beta: 0.5, capFactor: 1.25 });
    s.addPeer('fast', { score: 0.9 });
    s.addPeer('slow', { score: 0.1 });
    s.setPeerPieces('fast', () => true);
    s.setPeerPieces('slow', () => true);
    drive(s, clock, {});
    const byId = Object.fromEntries(s.peers().map((p) => [p.peerId, p]));
    expect(s.isComplete()).toBe(true);
    // Threshold = ceil(40/2 × 1.25) = 25: the better peer gets more, but not beyond the cap.
    expect(byId.fast!.piecesVerified).toBeGreaterThan(byId.slow!.piecesVerified);
    expect(byId.fast!.piecesVerified).toBeLessThanOrEqual(25);
    expect(byId.fast!.piecesVerified + byId.slow!.piecesVerified).toBe(40);
  });

  it('lifts the cap when no other peer can take the work (work-conserving)', () => {
    const { s, clock } = make(12);
    s.addPeer('a', { score: 0.9 });
    s.addPeer('b', { score: 0.9 });
    s.setPeerPieces('a', () => true);
    s.setPeerPieces('b', () => true);
    s.removePeer('b');
    drive(s, clock, {});
    expect(s.isComplete()).toBe(true);
    expect(s.peers().find((p) => p.peerId === 'a')!.piecesVerified).toBe(12);
  });

  it('moves work away from a stalled peer after the stall timeout', () => {
    const { s, clock } = make(8, { stallTimeoutMs: 500, endgame: false });
    s.addPeer('stuck', { score: 1 });
    s.addPeer('good', { score: 0.1 });
    s.setPeerPieces('stuck', () => true);
    s.setPeerPieces('good', () => true);
    const { cancels, verifiedBy } = drive(s, clock, { stuck: 'stall' });
    expect(s.isComplete()).toBe(true);
    expect([...verifiedBy.values()].every((p) => p === 'good')).toBe(true);
    expect(cancels.some((c) => c.peerId === 'stuck')).toBe(true);
    expect(s.peers().find((p) => p.peerId === 'stuck')!.stalls).toBeGreaterThan(0);
  });

  it('does not hand a piece back to the peer it stalled at while another peer has it', () => {
    const { s, clock } = make(4, { stallTimeoutMs: 100, initialDepthBlocks: 4 });
    s.addPeer('stuck', { score: 1 });
    s.setPeerPieces('stuck', () => true);
    const first = s.poll().requests;
    const piece = first[0]!.piece;
    s.addPeer('good', { score: 0 });
    s.setPeerPieces('good', () => true);
    clock.advance(150); // the next poll sees the stall and drops stuck's work
    const { log, verifiedBy } = drive(s, clock, { stuck: 'stall' });
    expect(s.isComplete()).toBe(true);
    expect(verifiedBy.get(piece)).toBe('good');
    expect(log.some((r) => r.peerId === 'stuck' && r.piece === piece)).toBe(false);
  });

  it('bans a peer that serves corrupt pieces once it reaches strikesToBan, and completes from the others', () => {
    const { s, clock } = make(8);
    s.addPeer('evil', { score: 1 });
    s.addPeer('good', { score: 0.2 });
    s.setPeerPieces('evil', () => true);
    s.setPeerPieces('good', () => true);
    const { verifiedBy } = drive(s, clock, { evil: 'corrupt' });
    expect(s.isComplete()).toBe(true);
    const evil = s.peers().find((p) => p.peerId === 'evil')!;
    expect(evil.state).toBe('banned');
    expect(evil.banReason).toMatch(/3 pieces with a wrong hash/);
    // Banned at the threshold, not before and not after.
    expect(evil.corruptPieces).toBe(DEFAULT_SCHEDULER_OPTIONS.strikesToBan);
    expect(DEFAULT_SCHEDULER_OPTIONS.strikesToBan).toBe(3);
    expect([...verifiedBy.values()].every((p) => p === 'good')).toBe(true);
    // A banned peer cannot come back into this download.
    s.addPeer('evil', { score: 1 });
    expect(s.peers().find((p) => p.peerId === 'evil')!.state).toBe('banned');
  });

  it('strikes a peer for one corrupt piece only: it keeps serving the others, never that one', () => {
    const { s, clock } = make(8);
    s.addPeer('flaky', { score: 1 });
    s.addPeer('good', { score: 0.2 });
    s.setPeerPieces('flaky', () => true);
    s.setPeerPieces('good', () => true);
    let bad: number | undefined;
    const { verifiedBy, afterStrike } = drive(s, clock, {
      flaky: (piece) => {
        bad ??= piece;
        return piece === bad ? 'corrupt' : 'ok';
      },
    });
    expect(s.isComplete()).toBe(true);
    const flaky = s.peers().find((p) => p.peerId === 'flaky')!;
    expect(flaky.state).not.toBe('banned');
    expect(flaky.corruptPieces).toBe(1);
    expect(flaky.piecesVerified).toBeGreaterThan(0);
    expect(verifiedBy.get(bad!)).toBe('good');
    expect(afterStrike).toEqual([]);
  });

  it('returns what a corrupt piece cost: a strike, the ban at the threshold, then nothing', () => {
    const { s } = make(4, { strikesToBan: 2 });
    s.addPeer('a', { score: 1 });
    s.setPeerPieces('a', () => true);
    expect(s.pieceCorrupt('a', 0)).toEqual({ kind: 'struck', strikes: 1 });
    // The same piece again is no second strike.
    expect(s.pieceCorrupt('a', 0)).toEqual({ kind: 'ignored' });
    expect(s.peers()[0]!.state).toBe('active');
    expect(s.pieceCorrupt('a', 2)).toMatchObject({
      kind: 'banned',
      strikes: 2,
      reason: expect.stringMatching(/0, 2/),
    });
    expect(s.peers()[0]!.state).toBe('banned');
    expect(s.pieceCorrupt('a', 3)).toEqual({ kind: 'ignored' });
    expect(s.pieceCorrupt('nobody', 1)).toEqual({ kind: 'ignored' });
  });

  it('with the only holder struck for some pieces: completes every other piece, then says which are struck', () => {
    const { s, clock } = make(10);
    s.addPeer('only', { score: 1 });
    s.setPeerPieces('only', () => true);
    const { afterStrike } = drive(
      s,
      clock,
      { only: (piece) => (piece === 3 || piece === 7 ? 'corrupt' : 'ok') },
      2000,
    );
    expect(s.failure()).toBeUndefined();
    expect(s.verifiedCount()).toBe(8);
    expect(s.struckOut()).toEqual([
      { piece: 3, peers: ['only'] },
      { piece: 7, peers: ['only'] },
    ]);
    expect(s.peers()[0]!.state).not.toBe('banned');
    expect(afterStrike).toEqual([]);
    // Another holder turns up: the struck pieces are fetchable again.
    s.addPeer('late', { score: 0.5 });
    s.setPeerPieces('late', () => true);
    expect(s.struckOut()).toBeUndefined();
    drive(s, clock, { only: 'corrupt' });
    expect(s.isComplete()).toBe(true);
  });

  it('counts a whole peer (a spreading seeder) as a holder of the pieces it has not shown, unless struck for them', () => {
    const { s, clock } = make(10);
    s.addPeer('only', { score: 1 });
    s.setPeerPieces('only', () => true);
    drive(s, clock, { only: (piece) => (piece === 3 ? 'corrupt' : 'ok') }, 2000);
    expect(s.struckOut()).toEqual([{ piece: 3, peers: ['only'] }]);
    // It has shown nothing yet, piece 3 among it: the piece may still come from it.
    s.addPeer('spreading', { score: 0.5, whole: true });
    expect(s.struckOut()).toBeUndefined();
    // Struck for it too: nobody is left to bring it.
    s.setPeerPieces('spreading', (i) => i === 3);
    drive(s, clock, { spreading: 'corrupt' }, 2000);
    expect(s.struckOut()).toEqual([{ piece: 3, peers: ['only', 'spreading'] }]);
    // Back after a reconnect as an ordinary seeder showing nothing: not a holder.
    s.removePeer('spreading');
    s.addPeer('spreading', { score: 0.5 });
    expect(s.struckOut()).toEqual([{ piece: 3, peers: ['only', 'spreading'] }]);
  });

  it('never schedules a struck (peer, piece) pair again, whatever the swarm (property)', () => {
    const pieces = 12;
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.array(fc.tuple(fc.nat({ max: 3 }), fc.nat({ max: pieces - 1 })), { maxLength: 20 }),
        fc.array(fc.array(fc.boolean(), { minLength: pieces, maxLength: pieces }), {
          minLength: 4,
          maxLength: 4,
        }),
        fc.integer({ min: 1, max: 4 }),
        fc.boolean(),
        (peerCount, badPairs, holdings, strikesToBan, endgame) => {
          const { s, clock } = make(pieces, { strikesToBan, endgame });
          const bad = new Set(badPairs.map(([p, i]) => `p${p}:${i}`));
          const behaviour: Record<string, PeerBehaviour> = {};
          for (let k = 0; k < peerCount; k++) {
            s.addPeer(`p${k}`, { score: (k + 1) / peerCount });
            s.setPeerPieces(`p${k}`, (i) => holdings[k]![i]!);
            behaviour[`p${k}`] = (i) => (bad.has(`p${k}:${i}`) ? 'corrupt' : 'ok');
          }
          const { afterStrike, log } = drive(s, clock, behaviour, 3000);
          expect(afterStrike).toEqual([]);
          for (const p of s.peers()) {
            // Banned exactly at the threshold of distinct struck pieces.
            expect(p.state === 'banned').toBe(p.corruptPieces >= strikesToBan);
            expect(p.corruptPieces).toBeLessThanOrEqual(strikesToBan);
          }
          // Nothing left running: either done, or what is missing is struck or unheld.
          if (!s.isComplete() && s.failure() === undefined) {
            expect(s.poll().requests).toEqual([]);
            const struck = s.struckOut();
            if (struck !== undefined) {
              for (const { piece, peers } of struck) {
                for (const id of peers)
                  expect(log.some((r) => r.peerId === id && r.piece === piece)).toBe(true);
              }
            }
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('requeues the in-flight work of a peer that leaves', () => {
    const { s, clock } = make(4, { initialDepthBlocks: 16 });
    s.addPeer('a', { score: 1 });
    s.setPeerPieces('a', () => true);
    const first = s.poll();
    expect(first.requests.length).toBeGreaterThan(0);
    s.removePeer('a');
    expect(s.unreachableCount()).toBe(4);
    expect(s.usablePeerCount()).toBe(0);
    s.addPeer('b', { score: 1 });
    s.setPeerPieces('b', () => true);
    const { verifiedBy } = drive(s, clock, {});
    expect(s.isComplete()).toBe(true);
    expect(new Set(verifiedBy.values())).toEqual(new Set(['b']));
  });

  it('duplicates the last pieces in the endgame and cancels the loser', () => {
    const { s } = make(1, { initialDepthBlocks: 8 });
    s.addPeer('slow', { score: 1 });
    s.setPeerPieces('slow', () => true);
    const first = s.poll();
    expect(first.requests.every((r) => r.peerId === 'slow')).toBe(true);
    s.addPeer('late', { score: 0.5 });
    s.setPeerPieces('late', () => true);
    const second = s.poll();
    expect(second.requests.length).toBe(4);
    expect(second.requests.every((r) => r.peerId === 'late' && r.piece === 0)).toBe(true);
    let done = false;
    for (const r of second.requests) {
      const out = s.blockReceived('late', r.piece, r.offset, r.length);
      done = out.kind === 'accepted' && out.attemptComplete;
    }
    expect(done).toBe(true);
    s.pieceVerified('late', 0);
    const third = s.poll();
    expect(third.cancels.map((c) => c.peerId)).toEqual(['slow', 'slow', 'slow', 'slow']);
    expect(third.dropped).toContainEqual({ peerId: 'slow', piece: 0 });
    expect(s.isComplete()).toBe(true);
    // A late block of the cancelled attempt is ignored.
    expect(s.blockReceived('slow', 0, 0, 16 * KiB)).toEqual({ kind: 'unexpected' });
  });

  it('skips pieces already verified (resume)', () => {
    const { s, clock } = make(6, {}, (i) => i % 2 === 0);
    s.addPeer('a', { score: 1 });
    s.setPeerPieces('a', () => true);
    const { log } = drive(s, clock, {});
    expect(new Set(log.map((r) => r.piece))).toEqual(new Set([1, 3, 5]));
    expect(s.verifiedCount()).toBe(6);
  });

  it('fails the download when a piece fails too often', () => {
    const { s, clock } = make(2, { maxPieceFailures: 2, stallTimeoutMs: 100 });
    s.addPeer('a', { score: 1 });
    s.setPeerPieces('a', () => true);
    drive(s, clock, { a: 'stall' }, 2000);
    expect(s.failure()?.reason).toMatch(/failed 3 times/);
  });

  it('marks a piece unavailable at a peer that rejects it', () => {
    const { s, clock } = make(2, { initialDepthBlocks: 1 });
    s.addPeer('a', { score: 1 });
    s.addPeer('b', { score: 0 });
    s.setPeerPieces('a', () => true);
    s.setPeerPieces('b', () => true);
    const r = s.poll().requests.find((x) => x.peerId === 'a')!;
    s.requestRejected('a', r.piece, 'unavailable');
    const { verifiedBy } = drive(s, clock, {});
    expect(verifiedBy.get(r.piece)).toBe('b');
  });

  it('keeps assembling memory under maxInFlightBytes', () => {
    const { s } = make(100, { maxInFlightBytes: 256 * KiB, initialDepthBlocks: 32 });
    for (const id of ['a', 'b', 'c']) {
      s.addPeer(id, { score: 1 });
      s.setPeerPieces(id, () => true);
    }
    const { requests } = s.poll();
    const pieces = new Set(requests.map((r) => r.piece));
    // The bound, plus at most one piece for a peer that would otherwise sit idle.
    expect(pieces.size * 64 * KiB).toBeLessThanOrEqual(256 * KiB + 64 * KiB);
    expect(new Set(requests.map((r) => r.peerId))).toEqual(new Set(['a', 'b', 'c']));
    // Nothing more while the bound is reached.
    expect(s.poll().requests).toEqual([]);
  });

  it('keeps what a rate-limited download has requested and not read under pipeCapBytes, read at each fill', () => {
    let cap = 80 * KiB;
    const { s } = make(100, { initialDepthBlocks: 32, pipeCapBytes: () => cap });
    for (const id of ['a', 'b']) {
      s.addPeer(id, { score: 1 });
      s.setPeerPieces(id, () => true);
    }
    const inFlight = () => s.peers().reduce((n, p) => n + p.inFlightBlocks, 0) * 16 * KiB;
    const outstanding = s.poll().requests;
    // 32 blocks each without the cap; with it 80 KiB over both peers, five blocks.
    expect(outstanding).toHaveLength(5);
    const answer = (n: number) => {
      for (const r of outstanding.splice(0, n)) s.blockReceived(r.peerId, r.piece, r.offset, r.length);
      outstanding.push(...s.poll().requests);
    };
    answer(2);
    expect(inFlight()).toBe(80 * KiB);
    // A limit lowered mid-download: no new request until the backlog is under it...
    cap = 0;
    answer(1);
    expect(inFlight()).toBe(64 * KiB);
    answer(2);
    // ...and never under two blocks, so a paused or tiny limit still moves when it lets reads go.
    expect(inFlight()).toBe(32 * KiB);
    cap = Number.POSITIVE_INFINITY;
    answer(0);
    expect(inFlight()).toBe(64 * 16 * KiB);
  });

  it('grows a peer’s pipe with its measured rate', () => {
    const { s, clock } = make(200, {
      initialDepthBlocks: 2,
      maxDepthBlocks: 64,
      targetPipeMs: 100,
      maxInFlightBytes: 1 << 30,
    });
    s.addPeer('a', { score: 1 });
    s.setPeerPieces('a', () => true);
    let outstanding = s.poll().requests;
    for (let i = 0; i < 10; i++) {
      for (const r of outstanding) s.blockReceived('a', r.piece, r.offset, r.length);
      // 64 blocks × 16 KiB per 50 ms ≈ 20 MiB/s; pipe target = 100 ms of that ≈ 128 blocks → capped at 64.
      for (let k = 0; k < 64; k++) s.blockReceived('a', 999, 0, 16 * KiB);
      clock.advance(50);
      outstanding = s.poll().requests;
    }
    expect(s.peers()[0]!.inFlightBlocks).toBe(64);
  });
});

describe('scheduler, sequential (download_file --sequential)', () => {
  /** The order pieces are first requested in, from one peer that has them all. */
  const firstRequested = (sequential: boolean, have?: (i: number) => boolean) => {
    const { s, clock } = make(64, { sequential, initialDepthBlocks: 4 }, have);
    s.addPeer('a', { score: 0.5 });
    s.addPeer('b', { score: 0.5 });
    s.setPeerPieces('a', () => true);
    s.setPeerPieces('b', (i) => i % 2 === 0); // rarity differs: odd pieces are rarer
    const { log } = drive(s, clock, {});
    expect(s.isComplete()).toBe(true);
    return [...new Set(log.map((r) => r.piece))];
  };

  it('fetches the first and last pieces first, then the rest in file order whatever their rarity', () => {
    // Two peers fill their pipes in turn, so the first requests interleave a little.
    const order = firstRequested(true);
    expect(order.slice(0, 4)).toEqual(expect.arrayContaining([0, 63]));
    const rest = order.filter((i) => i !== 0 && i !== 63);
    expect(rest).toHaveLength(62);
    // Sequential-ish: each piece starts at most two pipes' width (a few pieces) from its place.
    for (const [k, piece] of rest.entries()) expect(Math.abs(piece - (k + 1))).toBeLessThanOrEqual(6);
    // Rarest-first (the default) starts somewhere at random and takes the rare odd pieces first.
    const rarest = firstRequested(false);
    expect(rarest.slice(0, 4)).not.toEqual(expect.arrayContaining([0, 63]));
    expect(rarest.some((piece, k) => Math.abs(piece - k) > 6)).toBe(true);
  });

  it('skips what a resumed download already has', () => {
    const order = firstRequested(true, (i) => i < 10 || i === 63);
    expect(order.slice(0, 3).sort((x, y) => x - y)).toEqual([10, 11, 12]);
  });
});

describe('scheduler, pieces not wanted (a folder download with a selection)', () => {
  it('never asks for skipped pieces, is complete without them, and fetches them once wanted', () => {
    const clock = fakeClock();
    const s = createScheduler({ blockSizeBytes: 16 * KiB, sequential: true })({
      pieces: layout(32, 64 * KiB),
      clock,
      random: seeded(),
      skip: (i) => i >= 8 && i < 24, // files two and three of four, 8 pieces each
    });
    s.addPeer('a', { score: 0.5 });
    s.setPeerPieces('a', () => true);
    // Skipped pieces are not missing: nothing unreachable about them either.
    s.setPeerPieces('a', (i) => i < 8 || i >= 24);
    expect(s.unreachableCount()).toBe(0);
    s.setPeerPieces('a', () => true);
    const first = drive(s, clock, {});
    expect(s.isComplete()).toBe(true);
    expect(s.verifiedCount()).toBe(16);
    expect(new Set(first.log.map((r) => r.piece))).toEqual(
      new Set([...Array.from({ length: 8 }, (_, i) => i), ...Array.from({ length: 8 }, (_, i) => 24 + i)]),
    );
    // The selection widens: the pieces of file three are wanted now, in order (sequential).
    s.want(Array.from({ length: 8 }, (_, i) => 16 + i));
    expect(s.isComplete()).toBe(false);
    const second = drive(s, clock, {});
    expect(s.isComplete()).toBe(true);
    expect(s.verifiedCount()).toBe(24);
    expect([...new Set(second.log.map((r) => r.piece))]).toEqual(Array.from({ length: 8 }, (_, i) => 16 + i));
  });
});
