import { type BackoffOptions, createBackoff } from './backoff.js';

/**
 * The download scheduler: which block to ask of which peer, and when.
 *
 * Pure logic (no sockets, no disk, no timers): the download engine tells it
 * what happened (a peer joined, announced pieces, delivered a block, a piece
 * verified or was corrupt) and calls `poll()` to learn what to send now.
 * Time comes from an injected clock so tests drive it by hand.
 *
 * The unit of work is an *attempt*: one piece fetched from one peer, block by
 * block over that peer's connection. One peer per attempt keeps the blame
 * clear: a piece whose hash fails was served entirely by one peer, who is
 * struck for that piece (never asked for it again in this download) and
 * banned only after strikesToBan distinct pieces. In the endgame a piece may
 * have a second attempt at another peer; the first to verify wins and the
 * other is cancelled.
 *
 * Assignment follows the seeds' rule: for each piece (rarest first), among
 * peers that have it and have room in their pipe, pick the highest
 *   α·score − β·assigned/threshold,  threshold = ceil(pieces / peers · K)
 * skipping peers at their threshold unless every candidate is (so a fast peer
 * takes over the work of slow or dead ones instead of the download waiting).
 * `score` blends the tracker's score with the rate measured here, so the rule
 * rebalances as peers speed up, slow down, stall or die.
 */

export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
}

export interface SchedulerOptions {
  /** Bytes per request; pieces are fetched in blocks of this size. */
  blockSizeBytes: number;
  /** Weight of the peer's score in the assignment rule. */
  alpha: number;
  /** Weight of the peer's load (pieces assigned / threshold). */
  beta: number;
  /** K in threshold = ceil(pieces / peers · K): how far above a fair share a peer may go. */
  capFactor: number;
  /**
   * Pipe depth of a peer before its rate is known, in full blocks (the pipe is
   * measured in bytes, so short blocks of small pieces do not shrink it).
   */
  initialDepthBlocks: number;
  minDepthBlocks: number;
  maxDepthBlocks: number;
  /**
   * Requests outstanding at one peer, at most, however short its blocks: the
   * piece server queues 128 per connection and answers BUSY beyond, and a
   * byte-measured pipe of a folder's tiny pieces (a few hundred bytes each)
   * would ask for hundreds at once, be refused, back off and ask again forever.
   */
  maxRequestsPerPeer: number;
  /** Keep this many milliseconds of a peer's measured rate in flight. */
  targetPipeMs: number;
  /** A peer with requests outstanding and nothing delivered for this long is stalled. */
  stallTimeoutMs: number;
  /**
   * Memory bound: bytes of pieces being fetched (requested or received, not
   * yet verified); exceeded only to give an idle peer one piece.
   */
  maxInFlightBytes: number;
  /** Duplicate the last pieces at other peers once nothing else is left to request. */
  endgame: boolean;
  /** Most simultaneous attempts on one piece in the endgame. */
  endgameMaxAttempts: number;
  /** A piece that fails (corrupt, stalled, rejected) more often than this fails the download. */
  maxPieceFailures: number;
  /**
   * Distinct pieces a peer may serve with a wrong hash before it is banned
   * from the download. Each corrupt piece strikes the peer for that piece
   * only: one bad piece is as often a seeder's changed file or a flipped bit
   * as malice, and a seeder may be the only holder of the rest (Transmission
   * bans after repeated bad pieces too, not after the first).
   */
  strikesToBan: number;
  /** Retry delay of a failed piece, and of a stalled or busy peer. */
  backoff: Partial<BackoffOptions>;
  /** Time constant of the measured-rate average. */
  rateHalfLifeMs: number;
  /** Weight of the measured rate against the tracker's score once measured (0..1). */
  measuredWeight: number;
  /**
   * Pieces in file order, the first and the last ones first (a media player reads a file's
   * header and index before it plays): rarity no longer decides which piece is next.
   */
  sequential: boolean;
  /**
   * Bytes the whole download may have requested and not yet read, over all its peers (at least
   * two blocks), asked at each fill; unset or Infinity: no bound. A download held to a rate
   * limit keeps only a short backlog this way: what it asked for beyond the rate would sit in
   * socket buffers, cross the wire in one burst and leave it idle after, so the rate a router
   * sees over a window would miss the limit (issue 17's limits.accuracy).
   */
  pipeCapBytes?: (() => number) | undefined;
}

export const DEFAULT_SCHEDULER_OPTIONS: Readonly<SchedulerOptions> = Object.freeze({
  blockSizeBytes: 256 * 1024,
  alpha: 1,
  beta: 0.5,
  capFactor: 1.25,
  initialDepthBlocks: 8,
  minDepthBlocks: 2,
  // 32 × 256 KiB = 8 MiB per connection: enough for loopback at full speed.
  maxDepthBlocks: 32,
  maxRequestsPerPeer: 128,
  targetPipeMs: 100,
  stallTimeoutMs: 10_000,
  // Keeps the downloader's peak memory well under its 150 MiB budget.
  maxInFlightBytes: 24 * 1024 * 1024,
  endgame: true,
  endgameMaxAttempts: 3,
  maxPieceFailures: 8,
  // Three distinct bad pieces: a changed region of a file is often one or two pieces, while a
  // peer sending garbage reaches three within its first pipe-full and costs little more.
  strikesToBan: 3,
  backoff: {},
  rateHalfLifeMs: 500,
  measuredWeight: 0.7,
  sequential: false,
});

export interface PieceLayout {
  count: number;
  /** Bytes in piece `index` (the last one may be short). */
  length(index: number): number;
}

export interface SchedulerComponents {
  pieces: PieceLayout;
  clock: Clock;
  /** Pieces already verified (a resumed download). */
  have?: (index: number) => boolean;
  /**
   * Pieces not wanted (the files of a folder left out of its selection):
   * never fetched, and not missing for isComplete(), until want()ed.
   */
  skip?: (index: number) => boolean;
  random?: () => number;
}

export interface BlockRequest {
  peerId: string;
  piece: number;
  offset: number;
  length: number;
}

export interface AttemptRef {
  peerId: string;
  piece: number;
}

/** What the engine should do now, as decided by `poll()`. */
export interface SchedulerActions {
  requests: BlockRequest[];
  /** Requests to withdraw (stalled peer, duplicate that lost the endgame race). */
  cancels: BlockRequest[];
  /** Attempts given up: the engine frees their buffers. */
  dropped: AttemptRef[];
  /** Peers newly considered stalled (work moved away). */
  stalled: string[];
}

export type BlockOutcome =
  | { kind: 'accepted'; attemptComplete: boolean }
  /** Not requested, already cancelled, or wrong length: ignore the bytes. */
  | { kind: 'unexpected' };

export type PeerStateName = 'active' | 'stalled' | 'busy' | 'banned' | 'gone';

/** What a corrupt piece cost its sender. */
export type CorruptOutcome =
  /** Struck for that piece; `strikes` distinct pieces so far. */
  | { kind: 'struck'; strikes: number }
  /** This strike reached strikesToBan: the peer is out of the download. */
  | { kind: 'banned'; strikes: number; reason: string }
  /** Already struck for that piece, already banned, or unknown: nothing changes. */
  | { kind: 'ignored' };

/** A missing piece that peers served corrupt, and who. */
export interface StruckPiece {
  piece: number;
  peers: string[];
}

export interface PeerReport {
  peerId: string;
  state: PeerStateName;
  /** The score the peer came with (from the tracker). */
  givenScore: number;
  /** The score the scheduler uses now (given blended with measured). */
  score: number;
  rateBytesPerSec: number;
  bytes: number;
  piecesAssigned: number;
  piecesVerified: number;
  corruptPieces: number;
  stalls: number;
  inFlightBlocks: number;
  banReason?: string;
}

export interface Scheduler {
  /**
   * `whole`: the peer holds every piece though it shows them a window at a time (a spreading
   * seeder): a piece it has not shown yet is still one it can bring.
   */
  addPeer(peerId: string, info: { score: number; whole?: boolean }): void;
  /** The peer's full bitfield (replaces what was known). */
  setPeerPieces(peerId: string, has: (index: number) => boolean): void;
  peerHasPiece(peerId: string, piece: number): void;
  /** The peer is gone (closed, killed): its work goes back to the pool. */
  removePeer(peerId: string): void;
  blockReceived(peerId: string, piece: number, offset: number, length: number): BlockOutcome;
  pieceVerified(peerId: string, piece: number): void;
  /** Skipped pieces become wanted (a folder's selection widened while it downloads). */
  want(pieces: Iterable<number>): void;
  /**
   * The piece from `peerId` failed its hash: the peer is struck for that
   * piece, and banned from the download at its strikesToBan-th distinct piece.
   */
  pieceCorrupt(peerId: string, piece: number): CorruptOutcome;
  /** The peer refused a request: 'unavailable' (it lacks the piece), 'busy', or another failure. */
  requestRejected(peerId: string, piece: number, reason: 'unavailable' | 'busy' | 'failed'): void;
  poll(): SchedulerActions;
  isComplete(): boolean;
  verifiedCount(): number;
  isVerified(piece: number): boolean;
  /** Set when a piece failed more than maxPieceFailures times. */
  failure(): { piece: number; reason: string } | undefined;
  /** Unverified pieces no usable peer has (0 = every missing piece is reachable). */
  unreachableCount(): number;
  /** Those pieces, in order: what nobody online has ("why not 100 %"). */
  unreachablePieces(): number[];
  /**
   * Set once nothing more can be fetched because of strikes: no attempt runs,
   * no missing piece has a usable peer that may still be asked for it, and
   * some missing pieces were served corrupt. Lists those pieces (and who
   * served them); undefined otherwise.
   */
  struckOut(): StruckPiece[] | undefined;
  /** Peers that may still be asked for something (not banned or gone). */
  usablePeerCount(): number;
  peers(): PeerReport[];
}

interface Attempt {
  piece: number;
  peer: PeerState;
  blockCount: number;
  /** Next block to request. */
  nextBlock: number;
  received: number;
  /** Outstanding block offsets. */
  outstanding: Set<number>;
}

interface PeerState {
  id: string;
  state: PeerStateName;
  givenScore: number;
  has: Uint8Array;
  /** Holds every piece, shown or not (addPeer's `whole`). */
  whole: boolean;
  attempts: Map<number, Attempt>;
  inFlight: number;
  inFlightBytes: number;
  /** Last delivery, or when the pipe went from empty to non-empty. */
  lastProgressAt: number;
  notBefore: number;
  rate: number; // bytes per ms, averaged
  sampleBytes: number;
  sampleAt: number;
  bytes: number;
  assigned: number;
  verified: number;
  corrupt: number;
  /** Pieces this peer served corrupt: never asked of it again in this download. */
  struck: Set<number>;
  stalls: number;
  banReason?: string;
}

interface PieceState {
  verified: boolean;
  failures: number;
  notBefore: number;
  attempts: number;
  /** Not wanted (SchedulerComponents.skip) until want(). */
  skipped?: boolean;
  /** Peers this piece already failed at: it goes elsewhere while anyone else has it. */
  failedAt?: Set<string>;
}

export function createScheduler(
  options: Partial<SchedulerOptions> = {},
): (components: SchedulerComponents) => Scheduler {
  const o: SchedulerOptions = { ...DEFAULT_SCHEDULER_OPTIONS, ...options };
  if (
    o.blockSizeBytes <= 0 ||
    o.minDepthBlocks < 1 ||
    o.maxDepthBlocks < o.minDepthBlocks ||
    o.maxRequestsPerPeer < 1
  ) {
    throw new RangeError('scheduler: need blockSizeBytes > 0 and 1 ≤ minDepthBlocks ≤ maxDepthBlocks');
  }
  return (components) => new DownloadScheduler(o, components);
}

class DownloadScheduler implements Scheduler {
  private readonly o: SchedulerOptions;
  private readonly layout: PieceLayout;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly backoff;
  private readonly pieceStates: PieceState[];
  private readonly avail: Uint16Array;
  private readonly peerMap = new Map<string, PeerState>();
  /** Unverified pieces, the tie-break order of rarest-first; compacted lazily. */
  private order: number[];
  private verified = 0;
  /** Pieces not wanted: neither fetched nor missing. */
  private skipped = 0;
  private verifiedSinceCompact = 0;
  /** Unverified pieces with no attempt (fetchable now or backing off): 0 means endgame. */
  private unstarted = 0;
  private floor = 1;
  private floorDirty = true;
  private memoryBytes = 0;
  private failed: { piece: number; reason: string } | undefined;
  /** Some peer was struck: struckOut() has something to look for. */
  private anyStruck = false;
  private pending: SchedulerActions = emptyActions();

  constructor(o: SchedulerOptions, c: SchedulerComponents) {
    this.o = o;
    this.layout = c.pieces;
    this.clock = c.clock;
    this.random = c.random ?? Math.random;
    this.backoff = createBackoff({ ...o.backoff, random: o.backoff.random ?? this.random });
    this.pieceStates = [];
    this.avail = new Uint16Array(c.pieces.count);
    this.order = [];
    for (let i = 0; i < c.pieces.count; i++) {
      const done = c.have?.(i) ?? false;
      const skipped = !done && (c.skip?.(i) ?? false);
      this.pieceStates.push({ verified: done, failures: 0, notBefore: 0, attempts: 0, skipped });
      if (done) this.verified++;
      else if (skipped) this.skipped++;
      else {
        this.order.push(i);
        this.unstarted++;
      }
    }
    if (o.sequential) {
      // The first and last pieces, then the rest in file order.
      const last = c.pieces.count - 1;
      const ends = this.order.filter((i) => i === 0 || i === last);
      this.order = [...ends, ...this.order.filter((i) => i !== 0 && i !== last)];
      return;
    }
    // Ties in rarity go in file order from a random starting point: downloaders of one
    // file start at different places (so they can trade pieces), while each writes long
    // runs of adjacent pieces (few large disk writes).
    const start = Math.floor(this.random() * this.order.length);
    this.order = [...this.order.slice(start), ...this.order.slice(0, start)];
  }

  // ---- peers -------------------------------------------------------------

  addPeer(peerId: string, info: { score: number; whole?: boolean }): void {
    const existing = this.peerMap.get(peerId);
    if (existing && existing.state !== 'gone') return;
    const now = this.clock.now();
    const p: PeerState = existing ?? {
      id: peerId,
      state: 'active',
      givenScore: clamp01(info.score),
      has: new Uint8Array(this.layout.count),
      whole: false,
      attempts: new Map(),
      inFlight: 0,
      inFlightBytes: 0,
      lastProgressAt: now,
      notBefore: 0,
      rate: 0,
      sampleBytes: 0,
      sampleAt: now,
      bytes: 0,
      assigned: 0,
      verified: 0,
      corrupt: 0,
      struck: new Set(),
      stalls: 0,
    };
    // A peer that comes back (reconnected) starts with an empty bitfield and a fresh rate.
    p.state = 'active';
    p.has.fill(0);
    p.whole = info.whole === true;
    p.rate = 0;
    p.sampleBytes = 0;
    p.sampleAt = now;
    p.notBefore = 0;
    this.peerMap.set(peerId, p);
  }

  setPeerPieces(peerId: string, has: (index: number) => boolean): void {
    const p = this.usable(peerId);
    if (!p) return;
    for (let i = 0; i < this.layout.count; i++) {
      const v = has(i) ? 1 : 0;
      if (v !== p.has[i]) {
        p.has[i] = v;
        this.avail[i] = this.avail[i]! + (v ? 1 : -1);
        this.floorDirty = true;
      }
    }
  }

  peerHasPiece(peerId: string, piece: number): void {
    const p = this.usable(peerId);
    if (!p || piece < 0 || piece >= this.layout.count || p.has[piece]) return;
    p.has[piece] = 1;
    this.avail[piece] = this.avail[piece]! + 1;
    this.floorDirty = true;
  }

  removePeer(peerId: string): void {
    const p = this.peerMap.get(peerId);
    if (!p || p.state === 'gone' || p.state === 'banned') return;
    this.dropAllWork(p, false, false);
    this.forgetPieces(p);
    p.state = 'gone';
  }

  // ---- deliveries ----------------------------------------------------------

  blockReceived(peerId: string, piece: number, offset: number, length: number): BlockOutcome {
    const p = this.peerMap.get(peerId);
    const a = p?.attempts.get(piece);
    if (!p || a === undefined || !a.outstanding.has(offset) || length !== this.blockLength(piece, offset)) {
      if (p) this.countBytes(p, length);
      return { kind: 'unexpected' };
    }
    a.outstanding.delete(offset);
    a.received++;
    p.inFlight--;
    p.inFlightBytes -= length;
    this.countBytes(p, length);
    p.lastProgressAt = this.clock.now();
    if (p.state === 'stalled') p.state = 'active';
    return { kind: 'accepted', attemptComplete: a.received === a.blockCount };
  }

  pieceVerified(peerId: string, piece: number): void {
    const ps = this.pieceStates[piece];
    if (!ps || ps.verified) return;
    if (ps.skipped) {
      // Found whole where it was not wanted (a folder's file already at its place).
      ps.skipped = false;
      this.skipped--;
    } else if (ps.attempts === 0) this.unstarted--;
    ps.verified = true;
    this.verified++;
    this.verifiedSinceCompact++;
    const p = this.peerMap.get(peerId);
    if (p) {
      p.verified++;
      const a = p.attempts.get(piece);
      if (a) this.endAttempt(a, false);
    }
    // Endgame duplicates of this piece lost the race.
    for (const other of this.peerMap.values()) {
      const a = other.attempts.get(piece);
      if (a) this.endAttempt(a, true);
    }
  }

  want(pieces: Iterable<number>): void {
    let added = false;
    for (const i of pieces) {
      const ps = this.pieceStates[i];
      if (!ps?.skipped) continue;
      ps.skipped = false;
      this.skipped--;
      this.unstarted++;
      this.order.push(i);
      added = true;
    }
    if (!added) return;
    this.floorDirty = true;
    if (this.o.sequential) this.order.sort((a, b) => a - b);
  }

  pieceCorrupt(peerId: string, piece: number): CorruptOutcome {
    const p = this.peerMap.get(peerId);
    if (!p || p.state === 'banned' || piece < 0 || piece >= this.layout.count || p.struck.has(piece)) {
      return { kind: 'ignored' };
    }
    p.corrupt++;
    p.struck.add(piece);
    this.anyStruck = true;
    const a = p.attempts.get(piece);
    if (a) this.endAttempt(a, true);
    this.failPiece(piece, `peer ${peerId.slice(0, 12)} served corrupt data`, peerId);
    const strikes = p.struck.size;
    if (strikes < this.o.strikesToBan) return { kind: 'struck', strikes };
    const reason = `served ${strikes} pieces with a wrong hash (${[...p.struck].join(', ')})`;
    this.ban(p, reason);
    return { kind: 'banned', strikes, reason };
  }

  requestRejected(peerId: string, piece: number, reason: 'unavailable' | 'busy' | 'failed'): void {
    const p = this.usable(peerId);
    if (!p) return;
    const a = p.attempts.get(piece);
    if (a) this.endAttempt(a, true);
    if (reason === 'unavailable') {
      if (p.has[piece]) {
        p.has[piece] = 0;
        this.avail[piece] = this.avail[piece]! - 1;
        this.floorDirty = true;
      }
    } else if (reason === 'busy') {
      // Back off the whole peer: it has no upload slot for us now.
      p.stalls++;
      p.state = 'busy';
      p.notBefore = this.clock.now() + this.backoff.delayMs(p.stalls);
      this.dropAllWork(p, true, false);
    } else {
      this.failPiece(piece, `peer ${peerId.slice(0, 12)} refused it`, peerId);
    }
  }

  // ---- decisions -----------------------------------------------------------

  poll(): SchedulerActions {
    const now = this.clock.now();
    this.sampleRates(now);
    this.detectStalls(now);
    if (this.failed === undefined && !this.isComplete()) this.fill(now);
    const out = this.pending;
    this.pending = emptyActions();
    return out;
  }

  private detectStalls(now: number): void {
    for (const p of this.peerMap.values()) {
      if (p.state !== 'active' || p.inFlight === 0) continue;
      if (now - p.lastProgressAt < this.o.stallTimeoutMs) continue;
      p.stalls++;
      p.state = 'stalled';
      p.rate = 0;
      p.notBefore = now + this.backoff.delayMs(p.stalls);
      this.pending.stalled.push(p.id);
      this.dropAllWork(p, true, true);
    }
  }

  private fill(now: number): void {
    const candidates = [...this.peerMap.values()].filter((p) => this.eligible(p, now));
    if (candidates.length === 0) return;
    const scores = this.scores();
    // Fastest first, so it tops up its pipe before slower peers take new pieces.
    candidates.sort((a, b) => (scores.get(b.id) ?? 0) - (scores.get(a.id) ?? 0));
    for (const p of candidates) this.topUp(p);
    const live = Math.max(1, this.usablePeerCount());
    const threshold = Math.max(1, Math.ceil(((this.layout.count - this.skipped) / live) * this.o.capFactor));
    let open = candidates.filter((p) => this.room(p) > 0);
    while (open.length > 0) {
      if (this.memoryBytes >= this.o.maxInFlightBytes) {
        // Over the memory bound only a peer with nothing at all may start a piece: memory stays
        // within max(bound, one piece per peer) and no peer sits idle.
        open = open.filter((p) => p.attempts.size === 0);
        if (open.length === 0) break;
      }
      const piece = this.pickRarest(open, now);
      if (piece === undefined) break;
      const best = this.choosePeer(piece, open, scores, threshold);
      this.startAttempt(best, piece);
      this.topUp(best);
      open = open.filter((p) => this.room(p) > 0);
    }
    if (this.o.endgame) {
      for (const p of open) {
        while (this.room(p) > 0 && this.memoryBytes < this.o.maxInFlightBytes) {
          const piece = this.pickDuplicate(p);
          if (piece === undefined) break;
          this.startAttempt(p, piece);
          this.topUp(p);
        }
      }
    }
  }

  /** The seeds' rule: α·score − β·load/threshold, peers at threshold only if all are. */
  private choosePeer(
    piece: number,
    open: PeerState[],
    scores: Map<string, number>,
    threshold: number,
  ): PeerState {
    const having = open.filter((p) => this.canTake(p, piece));
    const under = having.filter((p) => p.assigned < threshold);
    const pool = under.length > 0 ? under : having;
    let best = pool[0]!;
    let bestValue = Number.NEGATIVE_INFINITY;
    for (const p of pool) {
      const value = this.o.alpha * (scores.get(p.id) ?? 0) - (this.o.beta * p.assigned) / threshold;
      if (value > bestValue) {
        best = p;
        bestValue = value;
      }
    }
    return best;
  }

  /** Rarest missing piece that some open peer has and that is not being fetched or backing off. */
  private pickRarest(open: PeerState[], now: number): number | undefined {
    if (this.verifiedSinceCompact > 256) this.compactOrder();
    // No piece can be rarer than the floor: the scan stops at the first one that reaches it,
    // so with an even swarm a pick costs O(pieces in flight), not O(pieces).
    const floor = this.availabilityFloor();
    let best: number | undefined;
    let bestAvail = Number.POSITIVE_INFINITY;
    for (const i of this.order) {
      const ps = this.pieceStates[i]!;
      if (ps.verified || ps.attempts > 0 || ps.notBefore > now) continue;
      const a = this.avail[i]!;
      if (a === 0 || a >= bestAvail) continue;
      if (!open.some((p) => this.canTake(p, i))) continue;
      if (this.o.sequential) return i; // the order, not the rarity, decides
      best = i;
      bestAvail = a;
      if (a <= floor) break;
    }
    return best;
  }

  /** Lowest availability (> 0) among unverified pieces; a lower bound once pieces verify. */
  private availabilityFloor(): number {
    if (this.floorDirty) {
      let min = Number.POSITIVE_INFINITY;
      for (const i of this.order) {
        const a = this.avail[i]!;
        if (a > 0 && a < min && !this.pieceStates[i]!.verified) min = a;
      }
      this.floor = min === Number.POSITIVE_INFINITY ? 1 : min;
      this.floorDirty = false;
    }
    return this.floor;
  }

  private compactOrder(): void {
    this.order = this.order.filter((i) => !this.pieceStates[i]!.verified);
    this.verifiedSinceCompact = 0;
  }

  /** Endgame: an in-progress piece this peer has and is not already fetching, fewest attempts first. */
  private pickDuplicate(p: PeerState): number | undefined {
    if (this.unstarted > 0) return undefined;
    let best: number | undefined;
    let fewest = this.o.endgameMaxAttempts;
    for (const i of this.order) {
      const ps = this.pieceStates[i]!;
      if (ps.verified || ps.attempts === 0 || ps.attempts >= fewest) continue;
      if (p.has[i] !== 1 || p.attempts.has(i) || p.struck.has(i)) continue;
      best = i;
      fewest = ps.attempts;
    }
    return best;
  }

  /**
   * The peer has the piece, was not struck for it, and did not fail it
   * before, or every peer that still has it failed it (then retrying, after
   * backoff, is all there is). A strike is never retried.
   */
  private canTake(p: PeerState, piece: number): boolean {
    if (p.has[piece] !== 1 || p.struck.has(piece)) return false;
    const failed = this.pieceStates[piece]!.failedAt;
    if (failed === undefined || !failed.has(p.id)) return true;
    let others = 0;
    for (const q of this.peerMap.values())
      if (isUsable(q) && q.has[piece] === 1 && !failed.has(q.id)) others++;
    return others === 0;
  }

  private startAttempt(p: PeerState, piece: number): void {
    const length = this.layout.length(piece);
    const blockCount = Math.max(1, Math.ceil(length / this.o.blockSizeBytes));
    p.attempts.set(piece, { piece, peer: p, blockCount, nextBlock: 0, received: 0, outstanding: new Set() });
    p.assigned++;
    const ps = this.pieceStates[piece]!;
    if (ps.attempts === 0) this.unstarted--;
    ps.attempts++;
    this.memoryBytes += length;
  }

  /** Requests the next blocks of the peer's attempts, oldest attempt first, up to its pipe depth. */
  private topUp(p: PeerState): void {
    let room = this.room(p);
    if (room <= 0) return;
    for (const a of p.attempts.values()) {
      while (room > 0 && a.nextBlock < a.blockCount && p.inFlight < this.o.maxRequestsPerPeer) {
        const offset = a.nextBlock * this.o.blockSizeBytes;
        a.nextBlock++;
        a.outstanding.add(offset);
        if (p.inFlight === 0) p.lastProgressAt = this.clock.now();
        const length = this.blockLength(a.piece, offset);
        p.inFlight++;
        p.inFlightBytes += length;
        room -= length;
        this.pending.requests.push({ peerId: p.id, piece: a.piece, offset, length });
      }
      if (room <= 0) return;
    }
  }

  // ---- bookkeeping ---------------------------------------------------------

  private endAttempt(a: Attempt, cancel: boolean): void {
    const p = a.peer;
    if (p.attempts.get(a.piece) !== a) return;
    p.attempts.delete(a.piece);
    for (const offset of a.outstanding) {
      const length = this.blockLength(a.piece, offset);
      p.inFlight--;
      p.inFlightBytes -= length;
      if (cancel) this.pending.cancels.push({ peerId: p.id, piece: a.piece, offset, length });
    }
    const ps = this.pieceStates[a.piece]!;
    ps.attempts--;
    if (ps.attempts === 0 && !ps.verified) this.unstarted++;
    this.memoryBytes -= this.layout.length(a.piece);
    this.pending.dropped.push({ peerId: p.id, piece: a.piece });
  }

  private dropAllWork(p: PeerState, cancel: boolean, countFailure: boolean): void {
    for (const a of [...p.attempts.values()]) {
      this.endAttempt(a, cancel);
      if (countFailure) this.failPiece(a.piece, `peer ${p.id.slice(0, 12)} stalled`, p.id);
    }
  }

  private failPiece(piece: number, reason: string, peerId: string): void {
    const ps = this.pieceStates[piece];
    if (!ps || ps.verified) return;
    ps.failures++;
    ps.failedAt ??= new Set();
    ps.failedAt.add(peerId);
    ps.notBefore = this.clock.now() + this.backoff.delayMs(ps.failures);
    if (ps.failures > this.o.maxPieceFailures && this.failed === undefined) {
      this.failed = { piece, reason: `piece ${piece} failed ${ps.failures} times; last: ${reason}` };
    }
  }

  private ban(p: PeerState, reason: string): void {
    if (p.state === 'banned') return;
    this.dropAllWork(p, true, false);
    this.forgetPieces(p);
    p.state = 'banned';
    p.banReason = reason;
  }

  private forgetPieces(p: PeerState): void {
    for (let i = 0; i < p.has.length; i++) {
      if (p.has[i]) {
        p.has[i] = 0;
        this.avail[i] = this.avail[i]! - 1;
      }
    }
    this.floorDirty = true;
  }

  private countBytes(p: PeerState, n: number): void {
    p.bytes += n;
    p.sampleBytes += n;
  }

  private sampleRates(now: number): void {
    for (const p of this.peerMap.values()) {
      const dt = now - p.sampleAt;
      // Sample at most every 50 ms: shorter windows measure bursts, not rates.
      if (dt < 50) continue;
      const inst = p.sampleBytes / dt;
      const w = 1 - 0.5 ** (dt / this.o.rateHalfLifeMs);
      p.rate = p.rate === 0 ? inst : p.rate + w * (inst - p.rate);
      p.sampleBytes = 0;
      p.sampleAt = now;
      if (p.state === 'busy' && now >= p.notBefore) p.state = 'active';
    }
  }

  /** Peer scores in 0..1: the tracker's score, blended with the measured rate relative to the fastest. */
  private scores(includeGone = false): Map<string, number> {
    let maxRate = 0;
    for (const p of this.peerMap.values()) {
      if (includeGone || isUsable(p)) maxRate = Math.max(maxRate, p.rate);
    }
    const out = new Map<string, number>();
    for (const p of this.peerMap.values()) {
      const measured = maxRate > 0 ? p.rate / maxRate : undefined;
      const blended =
        measured === undefined
          ? p.givenScore
          : (1 - this.o.measuredWeight) * p.givenScore + this.o.measuredWeight * measured;
      // Each stall costs a fifth of the score: slow-to-answer peers get less work.
      out.set(p.id, Math.max(0, blended - 0.2 * p.stalls));
    }
    return out;
  }

  private depth(p: PeerState): number {
    if (p.stalls > 0 && p.rate === 0) return this.o.minDepthBlocks;
    if (p.rate === 0) return this.o.initialDepthBlocks;
    const want = Math.ceil((p.rate * this.o.targetPipeMs) / this.o.blockSizeBytes);
    return Math.min(this.o.maxDepthBlocks, Math.max(this.o.minDepthBlocks, want));
  }

  /** Bytes the peer's pipe can still take (> 0: room for at least part of a block). */
  private room(p: PeerState): number {
    if (p.inFlight >= this.o.maxRequestsPerPeer) return 0;
    const own = this.depth(p) * this.o.blockSizeBytes - p.inFlightBytes;
    const cap = this.o.pipeCapBytes?.() ?? Number.POSITIVE_INFINITY;
    if (cap === Number.POSITIVE_INFINITY) return own;
    let inFlight = 0;
    for (const q of this.peerMap.values()) inFlight += q.inFlightBytes;
    return Math.min(own, Math.max(cap, 2 * this.o.blockSizeBytes) - inFlight);
  }

  private eligible(p: PeerState, now: number): boolean {
    if (p.state === 'banned' || p.state === 'gone') return false;
    if (p.notBefore > now) return false;
    if (p.state === 'stalled' || p.state === 'busy') p.state = 'active';
    return true;
  }

  private usable(peerId: string): PeerState | undefined {
    const p = this.peerMap.get(peerId);
    return p && isUsable(p) ? p : undefined;
  }

  private blockLength(piece: number, offset: number): number {
    return Math.min(this.o.blockSizeBytes, this.layout.length(piece) - offset);
  }

  // ---- queries -------------------------------------------------------------

  isComplete(): boolean {
    return this.verified + this.skipped === this.layout.count;
  }

  verifiedCount(): number {
    return this.verified;
  }

  isVerified(piece: number): boolean {
    return this.pieceStates[piece]?.verified ?? false;
  }

  failure(): { piece: number; reason: string } | undefined {
    return this.failed;
  }

  unreachableCount(): number {
    return this.unreachablePieces().length;
  }

  unreachablePieces(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.layout.count; i++) {
      const ps = this.pieceStates[i]!;
      if (!ps.verified && !ps.skipped && this.avail[i] === 0) out.push(i);
    }
    return out;
  }

  struckOut(): StruckPiece[] | undefined {
    if (!this.anyStruck) return undefined;
    const peers = [...this.peerMap.values()];
    if (peers.some((p) => p.attempts.size > 0)) return undefined;
    const struck: StruckPiece[] = [];
    for (let i = 0; i < this.layout.count; i++) {
      if (this.pieceStates[i]!.verified || this.pieceStates[i]!.skipped) continue;
      if (peers.some((p) => isUsable(p) && (p.has[i] === 1 || p.whole) && !p.struck.has(i))) return undefined;
      const by = peers.filter((p) => p.struck.has(i)).map((p) => p.id);
      if (by.length > 0) struck.push({ piece: i, peers: by });
    }
    return struck.length > 0 ? struck : undefined;
  }

  usablePeerCount(): number {
    let n = 0;
    for (const p of this.peerMap.values()) if (isUsable(p)) n++;
    return n;
  }

  peers(): PeerReport[] {
    // Reports rate peers against every peer measured, gone ones included (the end of a download).
    const scores = this.scores(true);
    return [...this.peerMap.values()].map((p) => ({
      peerId: p.id,
      state: p.state,
      givenScore: p.givenScore,
      score: scores.get(p.id) ?? 0,
      rateBytesPerSec: Math.round(p.rate * 1000),
      bytes: p.bytes,
      piecesAssigned: p.assigned,
      piecesVerified: p.verified,
      corruptPieces: p.corrupt,
      stalls: p.stalls,
      inFlightBlocks: p.inFlight,
      ...(p.banReason === undefined ? {} : { banReason: p.banReason }),
    }));
  }
}

function isUsable(p: PeerState): boolean {
  return p.state !== 'banned' && p.state !== 'gone';
}

function clamp01(x: number): number {
  return Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0;
}

function emptyActions(): SchedulerActions {
  return { requests: [], cancels: [], dropped: [], stalled: [] };
}
