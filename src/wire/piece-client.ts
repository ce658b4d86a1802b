/**
 * The piece client: the downloader's half of the wire protocol, the mirror
 * of piece-server.ts, over any Duplex (a TLS socket, or an in-memory pair in
 * tests).
 *
 * start() says hello with the ticket. The seeder answers with its hello
 * (which must name the file and the peer the transport proved, and our
 * protocol version), then its bitfield and a have per new piece; until that
 * hello, frames are capped at the handshake size. Then the client sends
 * requests and cancels, a renewed ticket (`ticket`) before the current one
 * expires, `corrupt` for a piece that failed its hash, and `order` right after
 * the seeder's hello when it fetches in file order (to a seeder that names that
 * feature: see frames.ts); it hands blocks
 * (into the buffers the io's allocatePayload lent, placed reads included)
 * and request rejects to its listener as typed events, and ends with one
 * 'close' carrying why. A seeder that breaks the protocol is closed with a
 * coded reject; nothing here throws out of the event loop.
 *
 * It knows nothing of scheduling, hashing or disks: the download engine
 * decides what to ask of whom, and what a block is worth.
 */
import { EventEmitter } from 'node:events';
import type { Bitfield } from '../core/bitfield.js';
import { CoterieError, type ErrorCode } from '../protocol/errors.js';
import { type Clock, type ClockTimer, realClock } from './clock.js';
import { FramedConnection, type FramedConnectionIo, type FramedConnectionOptions } from './connection.js';
import type { Dial, DialTarget } from './dial.js';
import {
  type BlockRef,
  type Frame,
  MAX_FRAME_LENGTH,
  PROTOCOL_VERSION,
  SEEDER_FEATURES,
  SEEDER_HANDSHAKE_MAX_FRAME_LENGTH,
  seederFeatures,
} from './frames.js';
import { PathKeepalive, type PathKeepaliveOptions } from './path-keepalive.js';
import { PlacedReads } from './placed-reads.js';

export interface PieceClientOptions {
  /** The file asked for; the seeder's hello must name it. */
  fileId: string;
  /** Our peer id: the one the ticket names. */
  peerId: string;
  /** The seeder's peer id as its transport proved it; its hello must name it (PEER_MISMATCH). */
  seederPeerId: string;
  /** Pieces in the file: a bitfield of another length, or a have past the end, is a protocol error. */
  pieceCount: number;
  /** The ticket sent in the hello. */
  ticket: string;
  /** A seeder that takes the connection but does not answer hello within this long is as good as down. */
  handshakeTimeoutMs: number;
  clock?: Clock;
  /** Keepalive, idle and close timings of the framed connection (its defaults otherwise). */
  connection?: Omit<FramedConnectionOptions, 'maxFrameLength' | 'clock'>;
  /** Where received frames are placed (pooled, page-aligned block slots, placed reads). */
  io?: FramedConnectionIo;
  /**
   * This download fetches in file order (--sequential): a seeder that takes the order frame is
   * told, and shows every piece instead of a spread window that starts at a random one.
   */
  inOrder?: boolean;
  /**
   * The path may drop silently (a relay, a punched hole): ping a seeder that pongs, and close
   * with UNAVAILABLE when it goes silent (path-keepalive.ts). dialPieceClient sets it for such
   * paths (with its defaults unless given; false: never); undefined: no pings (TCP to the seeder
   * resets or times out by itself).
   */
  pathKeepalive?: Partial<PathKeepaliveOptions> | false;
}

/** Why a request was refused, as the scheduler counts it. */
export type RejectKind = 'unavailable' | 'busy' | 'failed';

export interface PieceClientEvents {
  /**
   * The seeder's hello was right and its first bitfield is here (emitted next, in the same turn):
   * requests may go, and what the seeder holds is known. A link ready without a bitfield would
   * look like a seeder with nothing, and a download could give up on a piece it holds.
   */
  ready: [];
  bitfield: [Bitfield];
  have: [piece: number];
  /** A block: `data` is the listener's from now on (its buffer came from io.allocatePayload). */
  block: [piece: number, offset: number, data: Buffer];
  rejected: [request: BlockRef, kind: RejectKind, code: ErrorCode];
  /** Once, when the connection is gone: why (null for a plain end). */
  close: [error: CoterieError | null];
}

/**
 * How long a have may wait for a frame to ride with. A have is news for the seeder's spreading
 * (which pieces to show whom), not a request anything waits on; sent alone, each is a TLS record
 * to encrypt and a send here, and a wake-up, a read and a record to decrypt on the seeder: with a
 * have per piece to every seeder, more writes than the requests themselves. Held, they leave
 * with the next request, which at speed follows within a millisecond or two.
 */
export const HAVE_HOLD_MS = 50;

export class PieceClient extends EventEmitter<PieceClientEvents> {
  readonly #o: PieceClientOptions;
  readonly #conn: FramedConnection;
  /** The hello was right: frames after it are read. */
  #helloed = false;
  /** 'ready' was emitted (the first bitfield passed on). */
  #ready = false;
  /**
   * Bitfields still to come before the seeder's answer to our order frame (see frames.ts): until
   * it, its bitfield and haves are a spread window starting anywhere, not the pieces to fetch in
   * order, and are not passed on.
   */
  #untilOrderAnswer = 0;
  #handshake: ClockTimer | null = null;
  #keepalive: PathKeepalive | null = null;
  /** The seeder's hello named `nohaves`: it is told neither our bitfield nor our haves (frames.ts). */
  #noHaves = false;
  #spreads = false;

  /** The seeder's hello named `spread`: it holds every piece, shown to us or not yet (frames.ts). */
  get spreads(): boolean {
    return this.#spreads;
  }

  constructor(stream: FramedConnection['stream'], options: PieceClientOptions) {
    super();
    this.#o = options;
    const clock = options.clock ?? realClock;
    this.#conn = new FramedConnection(
      stream,
      { ...options.connection, maxFrameLength: SEEDER_HANDSHAKE_MAX_FRAME_LENGTH, clock },
      options.io,
    );
    this.#conn.on('frame', (f) => this.#onFrame(f));
    this.#conn.on('close', (info) => {
      this.#handshake?.cancel();
      this.#dropHaves();
      this.#keepalive?.stop();
      this.emit('close', info.error);
    });
  }

  get ready(): boolean {
    return this.#ready;
  }

  get closed(): boolean {
    return this.#conn.closed;
  }

  /** Says hello with the ticket. Call once, after the listeners are on (a failed write closes at once). */
  start(): void {
    const clock = this.#o.clock ?? realClock;
    this.#handshake = clock.setTimeout(() => {
      if (!this.#ready) {
        const what = this.#helloed ? 'send its bitfield' : 'answer hello';
        this.destroy(new CoterieError('UNAVAILABLE', `seeder did not ${what} in time`));
      }
    }, this.#o.handshakeTimeoutMs);
    const { fileId, peerId, ticket } = this.#o;
    this.#write({ type: 'hello', version: PROTOCOL_VERSION, fileId, peerId, ticket });
  }

  request(r: BlockRef): void {
    this.#write({ type: 'request', piece: r.piece, offset: r.offset, length: r.length });
  }

  cancel(r: BlockRef): void {
    this.#write({ type: 'cancel', piece: r.piece, offset: r.offset, length: r.length });
  }

  /**
   * Hands the seeder a renewed ticket. False when the connection is gone, or
   * when the ticket is not one the wire can carry (the connection then closes
   * and the engine reconnects with a fresh one).
   */
  renewTicket(ticket: string): boolean {
    return this.#write({ type: 'ticket', ticket });
  }

  /**
   * Tells the seeder a piece this downloader verified (a spreading seeder shows it others); to
   * a seeder whose hello named `nohaves`, nothing.
   */
  tellHave(piece: number): void {
    if (this.#conn.closed || this.#noHaves) return;
    this.#haves.push(piece);
    if (this.#haveTimer === null) {
      // Real time whatever the clock: it bounds a batching delay, like the turn's cork below.
      this.#haveTimer = setTimeout(() => {
        this.#haveTimer = null;
        this.#write(null);
      }, HAVE_HOLD_MS);
      this.#haveTimer.unref();
    }
  }

  /** Tells the seeder every piece this downloader holds (right after the hello). */
  tellPieces(bitfield: Bitfield): void {
    if (!this.#noHaves) this.#write({ type: 'bitfield', bitfield });
  }

  /** Tells the seeder a piece it sent failed its hash: it may re-check its file. */
  reportCorrupt(piece: number): void {
    this.#write({ type: 'corrupt', fileId: this.#o.fileId, piece });
  }

  /** Holds what is written until uncork(): the frames of one round leave in one write (one TLS record). */
  cork(): void {
    this.#conn.stream.cork();
  }

  uncork(): void {
    this.#conn.stream.uncork();
  }

  /** Closes: with a code, first tells the seeder why (a coded reject); without, a plain end. */
  close(code?: ErrorCode, reason = ''): void {
    void this.#conn.close(code, reason);
  }

  /** Tears the connection down at once; 'close' carries `error`. */
  destroy(error: CoterieError | null = null): void {
    this.#conn.destroy(error);
  }

  /** True while this turn of the event loop's frames are held for one write (see #write). */
  #heldForTurn = false;
  /** Haves waiting to leave with the next frame, or when #haveTimer fires (see HAVE_HOLD_MS). */
  #haves: number[] = [];
  #haveTimer: NodeJS.Timeout | null = null;

  #dropHaves(): void {
    if (this.#haveTimer !== null) clearTimeout(this.#haveTimer);
    this.#haveTimer = null;
    this.#haves = [];
  }

  /**
   * Writes a frame unless closed; a frame the codec refuses closes the connection with why.
   * The frames of one turn of the event loop (the requests that follow each block, and the
   * haves held till then) leave together, corked until the turn's end: over TLS every write is
   * a record to encrypt, a send to the kernel and, on the seeder, a record to decrypt and a
   * frame read of its own; a block's worth of them cost more than the block. A turn is
   * microseconds to a download's milliseconds of requests in flight. `null` writes only the
   * held haves.
   */
  #write(frame: Frame | null): boolean {
    if (this.#conn.closed) return false;
    if (this.#haves.length === 0 && frame === null) return true;
    if (!this.#heldForTurn) {
      this.#heldForTurn = true;
      const stream = this.#conn.stream;
      stream.cork();
      setImmediate(() => {
        this.#heldForTurn = false;
        stream.uncork();
      });
    }
    try {
      // Held haves go first (null: the hold is up, nothing else to send).
      if (this.#haves.length > 0) {
        const haves = this.#haves;
        this.#dropHaves();
        for (const piece of haves) this.#conn.write({ type: 'have', piece });
      }
      if (frame !== null) this.#conn.write(frame);
      return true;
    } catch (err) {
      this.destroy(CoterieError.from(err, 'PROTOCOL_ERROR'));
      return false;
    }
  }

  #onFrame(f: Frame): void {
    this.#keepalive?.heard();
    if (f.type === 'reject' && f.request === null) {
      // The seeder closes with a reason (bad ticket, not sharing, busy, revoked): that is the close's error.
      this.destroy(new CoterieError(f.code, f.reason || f.code));
      return;
    }
    if (!this.#helloed) {
      this.#onHello(f);
      return;
    }
    const count = this.#o.pieceCount;
    switch (f.type) {
      case 'bitfield':
        if (f.bitfield.length !== count) {
          this.close('PROTOCOL_ERROR', `bitfield of ${f.bitfield.length} pieces, file has ${count}`);
          return;
        }
        if (this.#untilOrderAnswer > 0 && --this.#untilOrderAnswer > 0) return;
        if (!this.#ready) {
          this.#ready = true;
          this.#handshake?.cancel();
          this.emit('ready');
        }
        this.emit('bitfield', f.bitfield);
        return;
      case 'have':
        if (f.piece >= count) {
          this.close('PIECE_OUT_OF_RANGE', `have ${f.piece} past the last piece`);
          return;
        }
        // Haves add to a bitfield: none is news before the first one.
        if (this.#untilOrderAnswer === 0 && this.#ready) this.emit('have', f.piece);
        return;
      case 'piece':
        this.emit('block', f.piece, f.offset, f.data);
        return;
      case 'reject':
        if (f.request !== null) this.emit('rejected', f.request, rejectKind(f.code), f.code);
        return;
      case 'keepalive':
        return;
      case 'pong':
        this.#keepalive?.pong(f.nonce);
        return;
      default:
        // hello twice, or request/cancel: we serve through the piece server, not on this connection.
        this.close('PROTOCOL_ERROR', `unexpected ${f.type} frame from a seeder`);
    }
  }

  #onHello(f: Frame): void {
    if (f.type !== 'hello') {
      this.close('PROTOCOL_ERROR', `expected hello, got ${f.type}`);
      return;
    }
    if (f.fileId !== this.#o.fileId || f.peerId !== this.#o.seederPeerId) {
      this.close('PEER_MISMATCH', 'hello names another file or peer');
      return;
    }
    if (f.version !== PROTOCOL_VERSION) {
      this.close('PROTOCOL_ERROR', `protocol version ${f.version} not supported`);
      return;
    }
    this.#helloed = true;
    const features = seederFeatures(f);
    this.#noHaves = features.has(SEEDER_FEATURES.noHaves);
    this.#spreads = features.has(SEEDER_FEATURES.spread);
    this.#conn.maxFrameLength = MAX_FRAME_LENGTH;
    // Before 'ready' (and the engine's bitfield): the seeder stops spreading to us first.
    if (this.#o.inOrder === true && features.has(SEEDER_FEATURES.order)) {
      this.#write({ type: 'order' });
      // Its first bitfield, then the answer.
      this.#untilOrderAnswer = 2;
    }
    const keepalive = this.#o.pathKeepalive;
    if (keepalive !== undefined && keepalive !== false && features.has(SEEDER_FEATURES.ping)) {
      this.#keepalive = new PathKeepalive(
        {
          clock: this.#o.clock ?? realClock,
          ping: (nonce) => this.#write({ type: 'ping', nonce }),
          // Frames go straight to our listener: a paused stream is our consumer (or our limits) behind.
          notReading: () => this.#conn.stream.isPaused(),
          dead: (reason) => this.destroy(new CoterieError('UNAVAILABLE', reason)),
        },
        keepalive,
      );
      this.#keepalive.start();
    }
    // 'ready' waits for the first bitfield (in onFrame).
  }
}

function rejectKind(code: ErrorCode): RejectKind {
  if (code === 'PIECE_UNAVAILABLE' || code === 'PIECE_OUT_OF_RANGE') return 'unavailable';
  return code === 'BUSY' ? 'busy' : 'failed';
}

/**
 * Dials `target` and wraps the stream in a piece client (not started): the
 * stream's reads are placed into the client's buffers, and a transport that
 * proved another peer than the one listed is refused (PEER_MISMATCH).
 */
export async function dialPieceClient(
  dial: Dial,
  target: DialTarget,
  signal: AbortSignal,
  options: Omit<PieceClientOptions, 'seederPeerId'>,
): Promise<PieceClient> {
  const reads = new PlacedReads();
  const { stream, peerId, throttle, relayed, punched } = await dial(target, signal, reads);
  if (peerId !== target.peerId) {
    stream.destroy();
    throw new CoterieError(
      'PEER_MISMATCH',
      `the peer dialled as ${target.peerId.slice(0, 12)}… is ${peerId.slice(0, 12)}…`,
    );
  }
  // A relay or a punched hole may go silent without a reset (a router's mapping lost): pinged.
  const asked = options.pathKeepalive;
  const pathKeepalive = asked !== false && (relayed === true || punched === true) ? (asked ?? {}) : undefined;
  const { pathKeepalive: _asked, ...rest } = options;
  return new PieceClient(stream, {
    ...rest,
    ...(pathKeepalive === undefined ? {} : { pathKeepalive }),
    seederPeerId: peerId,
    io: { ...options.io, reads, throttle },
  });
}
