/**
 * One authorized piece-server connection serving one file: its hello and
 * bitfield, a have per new piece, and its requests answered in any order
 * with piece frames or request rejects, within the server's per-connection
 * and shared limits (see piece-server.ts).
 */
import type { Slots } from '../core/slots.js';
import { CoterieError, isCoterieError } from '../protocol/errors.js';
import type { BlockPool } from './block-pool.js';
import type { Clock, ClockTimer } from './clock.js';
import type { FramedConnection } from './connection.js';
import { takeCorruptReport } from './corrupt-reports.js';
import {
  type BlockRef,
  encodePieceFrameInPlace,
  type Frame,
  PIECE_FRAME_PREFIX_BYTES,
  PROTOCOL_VERSION,
  SEEDER_FEATURES,
} from './frames.js';
import { HAVE_HOLD_MS } from './piece-client.js';
import type { PieceSource } from './piece-source.js';
import { SpreadView, spreadOf } from './spread.js';

/**
 * How long a partial seeder (a downloader serving what it verified) holds its haves to one
 * downloader before they leave together. In a swarm each verified piece is a have on every
 * other downloader's connection; held HAVE_HOLD_MS (50 ms), a downloader verifying 80 pieces a
 * second sent a batch of about four on each of 15 connections twenty times a second: 300 TLS
 * records, sends, and on the other side wake-ups, reads and decrypts a second, more than half
 * the swarm's read and write calls. At 200 ms, a quarter as many. A piece is then unknown to
 * the others up to 200 ms longer; with hundreds of pieces to choose from that costs nothing,
 * and a spreading seeder's windows (which a downloader waits on) still leave at HAVE_HOLD_MS.
 */
export const PARTIAL_HAVE_HOLD_MS = 200;

/** What every session of one server shares: its limits, clock, slots, block pool, counters and logger. */
export interface ServeContext {
  maxQueuedRequestsPerConnection: number;
  maxBlocksInFlightPerConnection: number;
  stallTimeoutMs: number;
  clock: Clock;
  slots: Slots;
  blockPool: BlockPool;
  stats: { blocksSent: number; bytesSent: number; corruptReports: number };
  /** A complete file shows each downloader a window of its least-shown pieces (spread.ts). */
  spread: boolean;
  logger: { warn(obj: object, msg?: string): void };
}

/** One authorized connection serving one file. */
export class ServeSession {
  readonly #queue: BlockRef[] = [];
  #inFlight = 0;
  #stopped = false;
  #fileId = '';
  /** Blocks handed to the socket whose write has not called back yet (leased, or lent by the source). */
  readonly #writing = new Set<{ release(): void }>();
  /**
   * Resolves once the last block given a turn to be written is written (or the socket is
   * gone): blocks go to the socket one at a time. Two blocks waiting in a TLS socket leave
   * in one writev, which Node's TLS layer first copies into one buffer; one at a time, each
   * is encrypted where it lies. The kernel's send buffer keeps the wire busy meanwhile.
   */
  #lastBlock: Promise<void> = Promise.resolve();
  /** The blocks' turns not over yet, ended all at once when the socket closes. */
  readonly #turns = new Set<() => void>();
  /** Haves waiting to leave together (see #onHave), and the timer that sends them. */
  #haves: number[] = [];
  #haveTimer: NodeJS.Timeout | null = null;
  /**
   * A piece the downloader may ask for now (this partial seeder verified it, or the spread shows
   * it). Held up to HAVE_HOLD_MS and sent with the others of that while, in one write: in a swarm
   * every downloader serves every other, so each piece verified anywhere is a have on each of
   * those connections, and one write each is a TLS record to encrypt and a send here, and a
   * wake-up, a read and a record to decrypt there: sixteen downloaders of 2,048 pieces made half
   * a million of them, more than the blocks themselves cost.
   */
  readonly #onHave = (piece: number) => {
    if (this.conn.closed) return;
    this.#haves.push(piece);
    if (this.#haveTimer === null) {
      // Real time whatever the clock, as the client's hold: it bounds a batching delay.
      const hold = this.#spread === null ? PARTIAL_HAVE_HOLD_MS : HAVE_HOLD_MS;
      this.#haveTimer = setTimeout(() => this.#sendHaves(), hold);
      this.#haveTimer.unref();
    }
  };
  /** Set when this complete file is spread: what this connection was shown of it. */
  #spread: SpreadView | null = null;

  constructor(
    readonly conn: FramedConnection,
    readonly source: PieceSource,
    readonly ctx: ServeContext,
  ) {
    // A destroyed socket does not call back the writes still queued in it (Node's Duplex
    // destroy skips them), but once it has emitted 'close' its handle is closed and no native
    // code reads our buffers any more: give them all back. A late callback then does nothing.
    conn.stream.once('close', () => {
      for (const lease of this.#writing) lease.release();
      this.#writing.clear();
      for (const end of this.#turns) end();
      this.#turns.clear();
    });
  }

  start(peerId: string, fileId: string): void {
    this.#fileId = fileId;
    const { bitfield, pieceSize } = this.source;
    // A folder is spread as a file is: its download is one engine over the share's pieces.
    const spreads = this.ctx.spread && bitfield.length > 1 && bitfield.isComplete();
    // The hello names what this seeder understands beyond version 1: a downloader asking for
    // file order says so only to a seeder that takes the order frame, and pings only one that
    // pongs. What the downloader holds is news only to a spreading session: the others ask for none.
    const features = [
      SEEDER_FEATURES.order,
      SEEDER_FEATURES.ping,
      spreads ? SEEDER_FEATURES.spread : SEEDER_FEATURES.noHaves,
    ];
    this.conn.write({ type: 'hello', version: PROTOCOL_VERSION, fileId, peerId, ticket: features.join('.') });
    if (spreads) {
      // Nothing is added to a complete file: its pieces are shown a window at a time instead.
      const spread = spreadOf(this.source, bitfield.length, pieceSize);
      this.#spread = new SpreadView(spread, this.#onHave, this.ctx.clock);
      this.conn.write({ type: 'bitfield', bitfield: this.#spread.seen.clone() });
      this.#spread.start();
      // The first window goes at once: the downloader has nothing to ask for until it comes.
      this.#sendHaves();
      return;
    }
    // Snapshot and subscribe in the same tick: no piece can fall between the two.
    this.conn.write({ type: 'bitfield', bitfield: bitfield.clone() });
    this.source.on('have', this.#onHave);
  }

  /** The held haves, in one write (one TLS record while they fit). */
  #sendHaves(): void {
    if (this.#haveTimer !== null) clearTimeout(this.#haveTimer);
    this.#haveTimer = null;
    const haves = this.#haves;
    this.#haves = [];
    if (this.conn.closed || haves.length === 0) return;
    this.conn.stream.cork();
    try {
      for (const piece of haves) this.conn.write({ type: 'have', piece });
    } finally {
      this.conn.stream.uncork();
    }
  }

  stop(): void {
    this.#stopped = true;
    this.#queue.length = 0;
    if (this.#haveTimer !== null) clearTimeout(this.#haveTimer);
    this.#haveTimer = null;
    this.#haves = [];
    this.source.off('have', this.#onHave);
    this.#spread?.stop();
  }

  onFrame(frame: Frame): void {
    switch (frame.type) {
      case 'request':
        this.#onRequest(frame);
        return;
      case 'cancel': {
        const i = this.#queue.findIndex(
          (r) => r.piece === frame.piece && r.offset === frame.offset && r.length === frame.length,
        );
        if (i >= 0) this.#queue.splice(i, 1);
        return;
      }
      case 'corrupt':
        takeCorruptReport(frame, this.#fileId, this.source);
        this.ctx.stats.corruptReports++;
        return;
      case 'have':
        // What the downloader holds tells a spread file what to show it and the others.
        this.#spread?.holds(frame.piece);
        return;
      case 'order':
        this.#inOrder();
        return;
      case 'ping':
        // The downloader checks its path (a relay, a punched hole): the answer goes at once.
        this.conn.write({ type: 'pong', nonce: frame.nonce });
        return;
      case 'bitfield':
        if (this.#spread !== null && frame.bitfield.length === this.source.bitfield.length) {
          for (let i = 0; i < frame.bitfield.length; i++) if (frame.bitfield.has(i)) this.#spread.holds(i);
        }
        return;
      case 'keepalive':
      case 'reject':
        // A reject from a downloader needs no answer.
        return;
      default:
        throw new CoterieError('PROTOCOL_ERROR', `unexpected ${frame.type} frame from a downloader`);
    }
  }

  /**
   * The downloader fetches in file order (download_file --sequential, the first and last pieces
   * first): it is shown every piece, not a spread window. A window starts at a random piece (so
   * that seeders and downloaders spread different ones), and a downloader in order would get
   * the pieces from there on first, not the file's beginning a media player needs. Only the
   * downloaders that do not ask for order are spread among: a lone sequential downloader is
   * served as if spreading were off, and one in a swarm costs the others' windows nothing but
   * the pieces it takes (which it then serves them as a partial seeder). What it was shown and
   * did not ask for goes back to the pieces never shown (SpreadView.stop).
   */
  #inOrder(): void {
    if (this.#spread !== null) {
      this.#spread.stop();
      this.#spread = null;
      this.source.on('have', this.#onHave);
    }
    // The answer the downloader waits for (it ignores the window shown before): every piece held.
    this.conn.write({ type: 'bitfield', bitfield: this.source.bitfield.clone() });
  }

  #onRequest(r: BlockRef): void {
    const { bitfield } = this.source;
    const request = { piece: r.piece, offset: r.offset, length: r.length };
    let length: number;
    try {
      length = r.piece < this.source.pieceCount ? this.source.pieceLength(r.piece) : -1;
    } catch (err) {
      // A folder's page that cannot be read (peer.db altered, say): that piece is refused, the
      // tree's others still serve. What went wrong is the seeder's to know, not the downloader's.
      this.ctx.logger.warn({ err, piece: r.piece }, 'piece length unknown');
      this.#reject(request, 'PIECE_UNAVAILABLE', 'cannot read that piece now');
      return;
    }
    if (length < 0 || r.offset + r.length > length) {
      this.#reject(request, 'PIECE_OUT_OF_RANGE', 'block outside the file');
    } else if (!bitfield.has(r.piece) || this.#spread?.seen.has(r.piece) === false) {
      this.#reject(request, 'PIECE_UNAVAILABLE', 'piece not held');
    } else if (this.#queue.length >= this.ctx.maxQueuedRequestsPerConnection) {
      this.#reject(request, 'BUSY', `at most ${this.ctx.maxQueuedRequestsPerConnection} requests queued`);
    } else {
      this.#spread?.asked(r.piece);
      this.#queue.push(request);
      this.#pump();
    }
  }

  /** Waits for the socket to take what was written (`until`); a peer that stops reading is closed. */
  async #drain(until: Promise<void> = this.conn.drain()): Promise<void> {
    // Time spent waiting for our own upload limits is no stall of the peer's.
    let stalled: ClockTimer;
    const arm = () => {
      stalled = this.ctx.clock.setTimeout(() => {
        if (this.conn.heldByLimits) arm();
        else void this.conn.close('UNAVAILABLE', `block not taken within ${this.ctx.stallTimeoutMs} ms`);
      }, this.ctx.stallTimeoutMs);
    };
    arm();
    try {
      await until;
    } finally {
      stalled!.cancel();
    }
  }

  /** This block's turn at the socket: resolves when the block before it is written; call the end when done. */
  #takeTurn(): { previous: Promise<void>; end: () => void } {
    const previous = this.#lastBlock;
    let end!: () => void;
    this.#lastBlock = new Promise<void>((resolve) => {
      end = () => {
        this.#turns.delete(end);
        resolve();
      };
    });
    this.#turns.add(end);
    if (this.conn.stream.destroyed) end();
    return { previous, end };
  }

  #reject(request: BlockRef, code: 'PIECE_OUT_OF_RANGE' | 'PIECE_UNAVAILABLE' | 'BUSY', reason: string) {
    if (!this.conn.closed) this.conn.write({ type: 'reject', request, code, reason });
  }

  #pump(): void {
    while (
      !this.#stopped &&
      this.#queue.length > 0 &&
      this.#inFlight < this.ctx.maxBlocksInFlightPerConnection
    ) {
      this.#inFlight++;
      void this.#serveNext().finally(() => {
        this.#inFlight--;
        this.#pump();
      });
    }
  }

  /**
   * Writes one block in its turn (see #lastBlock). `release` gives its memory back, once: from the
   * write's callback, from the socket's close (#writing), or at once when it never reached the socket.
   */
  async #sendInTurn(
    bytes: number,
    write: (onWritten: () => void) => boolean,
    release: () => void,
  ): Promise<void> {
    const turn = this.#takeTurn();
    let released = false;
    const handBack = {
      release: () => {
        if (released) return;
        released = true;
        this.#writing.delete(handBack);
        release();
        turn.end();
      },
    };
    try {
      await this.#drain(turn.previous);
      if (this.#stopped || this.conn.closed) return handBack.release();
      const ok = write(() => handBack.release());
      this.#writing.add(handBack);
      // Counted once handed to the socket, before waiting for it to drain: the peer may read the
      // block before the drain resolves, and stats must not lag what it has already received.
      this.ctx.stats.blocksSent++;
      this.ctx.stats.bytesSent += bytes;
      if (!ok) await this.#drain();
    } catch (err) {
      // Not handed to the socket (write threw, or the drain before it failed): ours to give back.
      if (!this.#writing.has(handBack)) handBack.release();
      throw err;
    }
  }

  async #serveNext(): Promise<void> {
    // The upload limits first, holding no slot: a limited group's connections must not keep
    // the slots from the others'.
    const pace = this.conn.paced();
    if (pace !== null) await pace;
    await this.ctx.slots.acquire();
    try {
      // Taken after the slot: a cancel that arrived while waiting still applies.
      const r = this.#queue.shift();
      if (r === undefined || this.#stopped) return;
      // A block the source holds in memory goes as it lies, no read and no copy.
      const lent = this.source.lend?.(r.piece, r.offset, r.length) ?? null;
      if (lent !== null) {
        const frame = { type: 'piece', piece: r.piece, offset: r.offset, data: lent.data } as const;
        await this.#sendInTurn(
          lent.data.length,
          (cb) => this.conn.write(frame, cb),
          () => lent.done(),
        );
        return;
      }
      // The block is read just past room for the frame's header, so the frame leaves as one buffer.
      // Once the socket has it, only its write callback gives the buffer back: the kernel or the
      // TLS layer may read it until then, even after this connection failed.
      const lease = this.ctx.blockPool.lease(PIECE_FRAME_PREFIX_BYTES + r.length);
      const into = lease.buffer.subarray(PIECE_FRAME_PREFIX_BYTES);
      let data: Buffer;
      try {
        data = await this.source.read(r.piece, r.offset, r.length, into);
      } catch (err) {
        lease.release();
        if (isCoterieError(err, 'NOT_SHARING')) {
          void this.conn.close(err.code, err.message);
          return;
        }
        this.ctx.logger.warn({ err, piece: r.piece }, 'piece read failed');
        this.#reject(r, 'PIECE_UNAVAILABLE', 'cannot read that piece now');
        return;
      }
      if (data === into && !this.#stopped && !this.conn.closed) {
        await this.#sendInTurn(
          data.length,
          (cb) => this.conn.writeEncoded(encodePieceFrameInPlace(lease.buffer, r.piece, r.offset), cb),
          () => lease.release(),
        );
        return;
      }
      // A source that read into a buffer of its own: ours is free now, the write needs no callback.
      lease.release();
      if (this.#stopped || this.conn.closed) return;
      const ok = this.conn.write({ type: 'piece', piece: r.piece, offset: r.offset, data });
      this.ctx.stats.blocksSent++;
      this.ctx.stats.bytesSent += data.length;
      if (!ok) await this.#drain();
    } catch (err) {
      // The connection closed while sending: its handler cleans up.
      if (!isCoterieError(err, 'UNAVAILABLE')) this.ctx.logger.warn({ err }, 'piece send failed');
    } finally {
      this.ctx.slots.release();
    }
  }
}
