/**
 * A complete seeder spreading distinct pieces over its downloaders (super-seeding).
 *
 * A seeder that shows every downloader its whole bitfield lets each pick for itself, and
 * downloaders that cannot see each other's requests pick the same pieces: the seeder sends
 * the file several times over while the downloaders, who could trade, have little to trade.
 * Instead each connection is shown a window of pieces (an empty bitfield, then `have`s):
 * pieces no downloader holds yet first (downloaders tell the seeder what they hold with
 * `have`s of their own), then the ones shown to the fewest. Sixteen downloaders each get
 * different pieces from the seeder and the rest from each other (partial seeders, announced
 * to the tracker). The window is refilled as the downloader asks for what it was shown or gets
 * it elsewhere, with pieces never shown to anyone; once every piece was shown, a downloader is
 * shown more only when it is starved (nothing left to ask here, no piece got anywhere for two
 * ticks): a batch of the least-held pieces, doubling while it stays so, so a downloader cut off
 * from the others still completes while the others are not sent what they can trade. Shown pieces are
 * never withdrawn: at worst this ends as a full bitfield.
 */
import { Bitfield } from '../core/bitfield.js';
import type { Clock, ClockTimer } from './clock.js';

/** Pieces shown beyond what a downloader asked for: this many bytes' worth, while it is alone. */
const WINDOW_BYTES = 32 * 1024 * 1024;
/** Fewest pieces shown ahead, whatever the number of downloaders. */
const MIN_WINDOW = 4;
/** A connection with nothing left to ask for this long is shown more. */
export const SPREAD_IDLE_MS = 500;
/** Ticks in a row without progress before a downloader counts as starved. */
export const STARVED_TICKS = 2;
/**
 * Ticks in a row before a downloader that tells what it holds, and was shown pieces it neither
 * asks for nor gets, counts as starved: a folder download whose selection leaves them out.
 * Longer than STARVED_TICKS: such a downloader is usually busy with what it asked for.
 */
export const UNINTERESTED_TICKS = 4;
/** A piece's rank: the downloaders holding it first, then how often it was shown. */
const HELD = 1 << 16;

/** The pieces of one complete file: who holds each and how often each was shown. */
export class Spread {
  /** holders · HELD + shown, per piece (both only grow). */
  readonly #rank: Float64Array;
  /** The lowest rank of any piece; and how many pieces have each rank. */
  #floor = 0;
  readonly #ranks = new Map<number, number>();
  #cursor = 0;
  readonly #random: () => number;
  sessions = 0;

  constructor(
    readonly pieceCount: number,
    readonly pieceSize: number,
    random: () => number = Math.random,
  ) {
    this.#rank = new Float64Array(pieceCount);
    this.#random = random;
    this.reset();
  }

  /** Pieces to keep shown ahead of each connection: the file split among its downloaders. */
  window(): number {
    const alone = Math.max(MIN_WINDOW, Math.ceil(WINDOW_BYTES / Math.max(1, this.pieceSize)));
    const share = Math.ceil(this.pieceCount / Math.max(1, this.sessions));
    return Math.max(MIN_WINDOW, Math.min(alone, share));
  }

  /**
   * The lowest-ranked piece outside `skip` (what the connection was shown or holds), counted as
   * shown; with `fresh`, only a piece never shown to anyone nor held.
   */
  take(skip: (piece: number) => boolean, fresh: boolean): number | undefined {
    const n = this.pieceCount;
    if (fresh && this.#floor > 0) return undefined;
    let best = -1;
    let bestRank = Number.POSITIVE_INFINITY;
    for (let k = 0; k < n; k++) {
      const i = (this.#cursor + k) % n;
      const r = this.#rank[i]!;
      if (r >= bestRank || skip(i)) continue;
      best = i;
      bestRank = r;
      // No piece ranks below the floor: the scan stops at the first one there.
      if (r <= this.#floor) break;
    }
    if (best < 0 || (fresh && bestRank > 0)) return undefined;
    this.#move(best, 1);
    this.#cursor = (best + 1) % n;
    return best;
  }

  /** A downloader holds `piece`. */
  held(piece: number): void {
    this.#move(piece, HELD);
  }

  /**
   * The last connection closed: nobody is left to trade with, so the pieces start over as never
   * shown nor held. Otherwise a file served once stays shown and held for good, and the next
   * lone downloader is shown nothing fresh: it waits to be starved for every window (a 1 GiB
   * download from three such seeders took 40 s instead of 5). Every round, a new file's first
   * one included, starts at a random piece, so that two seeders of one file spread different
   * ones: three that served the same downloader ended their rounds where it stopped, and went on
   * from there they would show the next one the same window, each piece got from one seeder
   * while the others waited (1 GiB from three: 560-590 MiB/s, against 600-730 started apart).
   */
  reset(): void {
    this.#rank.fill(0);
    this.#ranks.clear();
    this.#ranks.set(0, this.pieceCount);
    this.#floor = 0;
    this.#cursor = Math.floor(this.#random() * Math.max(1, this.pieceCount));
  }

  /** A connection that was shown `piece` closed before it got it: it counts as never shown there. */
  unshow(piece: number): void {
    if (this.#rank[piece]! % HELD > 0) this.#move(piece, -1);
  }

  #move(piece: number, by: number): void {
    const from = this.#rank[piece]!;
    this.#rank[piece] = from + by;
    this.#count(from, -1);
    this.#count(from + by, 1);
    if (from + by < this.#floor) this.#floor = from + by;
    while (!this.#ranks.has(this.#floor)) {
      let min = Number.POSITIVE_INFINITY;
      for (const r of this.#ranks.keys()) if (r < min) min = r;
      this.#floor = min;
    }
  }

  #count(rank: number, delta: number): void {
    const left = (this.#ranks.get(rank) ?? 0) + delta;
    if (left === 0) this.#ranks.delete(rank);
    else this.#ranks.set(rank, left);
  }
}

/** What one connection was shown of a spread file and holds of it, and when to show it more. */
export class SpreadView {
  /** Shown to this connection. */
  readonly seen: Bitfield;
  /** What the downloader said it holds. */
  readonly #has: Bitfield;
  /** Shown, not asked for and not held. */
  readonly #ahead = new Set<number>();
  /** The downloader tells what it holds (haves): an unasked window means it got them elsewhere. */
  #tells = false;
  #askedSinceTick = false;
  /** It told of a piece it got since the last tick: it is making progress, elsewhere or here. */
  #heardSinceTick = false;
  #idleTicks = 0;
  #timer: ClockTimer | null = null;
  #stopped = false;
  readonly #skip = (i: number) => this.seen.has(i) || this.#has.has(i);

  constructor(
    readonly spread: Spread,
    readonly show: (piece: number) => void,
    clock: Clock,
  ) {
    this.seen = new Bitfield(spread.pieceCount);
    this.#has = new Bitfield(spread.pieceCount);
    spread.sessions++;
    this.#timer = clock.setInterval(() => this.#tick(), SPREAD_IDLE_MS);
  }

  /** Shows the first window (after the empty bitfield). */
  start(): void {
    this.#fill(this.spread.window(), true);
  }

  /** A request for `piece`: refills the window if it was one shown ahead. */
  asked(piece: number): void {
    if (!this.#ahead.delete(piece)) return;
    this.#askedSinceTick = true;
    this.#fill(this.spread.window(), true);
  }

  /** The downloader holds `piece` (its have, or its bitfield: `piece` of range is ignored). */
  holds(piece: number): void {
    if (piece < 0 || piece >= this.spread.pieceCount || !this.#has.set(piece)) return;
    this.#tells = true;
    this.#heardSinceTick = true;
    this.spread.held(piece);
    if (this.#ahead.delete(piece)) this.#fill(this.spread.window(), true);
  }

  /** The connection closed. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#timer?.cancel();
    this.#timer = null;
    this.spread.sessions--;
    // What it was shown and never got goes back to the pieces never shown (its redial, say).
    for (const piece of this.#ahead) this.spread.unshow(piece);
    this.#ahead.clear();
    if (this.spread.sessions === 0) this.spread.reset();
  }

  #tick(): void {
    // Starved: it asked for nothing and (if it tells) got nothing.
    const idle = !this.#askedSinceTick && !this.#heardSinceTick;
    this.#askedSinceTick = false;
    this.#heardSinceTick = false;
    if (!idle) {
      this.#idleTicks = 0;
      return;
    }
    // Nothing to ask for and nothing coming from others (or, a downloader that does not tell,
    // nothing asked of what it was shown): show more, least held, then least shown, first.
    // Two ticks in a row: on a loaded machine a downloader trading well may miss one tick.
    // A downloader that tells and leaves shown pieces unasked does not want them (unselected
    // files of a folder): it is shown more too, after a longer wait, or it would stall.
    this.#idleTicks++;
    const after = this.#ahead.size === 0 || !this.#tells ? STARVED_TICKS : UNINTERESTED_TICKS;
    if (this.#idleTicks < after) return;
    const batch = this.spread.window() * 2 ** Math.min(this.#idleTicks - after, 16);
    this.#fill(this.#ahead.size + batch, false);
    if (this.seen.isComplete()) {
      // Everything is shown: nothing more to decide for this connection.
      this.#timer?.cancel();
      this.#timer = null;
    }
  }

  #fill(target: number, fresh: boolean): void {
    while (this.#ahead.size < target) {
      const piece = this.spread.take(this.#skip, fresh);
      if (piece === undefined) return;
      this.seen.set(piece);
      this.#ahead.add(piece);
      this.show(piece);
    }
  }
}

/** One spread per served file (per source object), shared by its connections. */
const spreads = new WeakMap<object, Spread>();

export function spreadOf(source: object, pieceCount: number, pieceSize: number): Spread {
  let s = spreads.get(source);
  if (s === undefined) {
    s = new Spread(pieceCount, pieceSize);
    spreads.set(source, s);
  }
  return s;
}
