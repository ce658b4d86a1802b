/**
 * The peer wire protocol's frames: layout, encoder and strict decoder.
 *
 * Every frame on the wire is
 *
 *     length u32 BE | type u8 | body (length - 1 bytes)
 *
 * `length` counts the type byte and the body, not itself. It is read unsigned
 * and compared with the decoder's maximum BEFORE anything is buffered: at most
 * MAX_FRAME_LENGTH (a 1 MiB block plus the piece header), and during the
 * handshake HANDSHAKE_MAX_FRAME_LENGTH, so that an unauthenticated peer cannot
 * make us hold a megabyte. A length of 0 (no type byte) is a protocol error.
 * All integers are big-endian and unsigned. Ids are raw 32-byte SHA-256 values
 * on the wire and lowercase hex in the decoded frames.
 *
 *   type  name       body
 *   0x00  keepalive  (empty)
 *   0x01  hello      version u16 | fileId 32B | peerId 32B | ticket (rest, ASCII
 *                    compact JWS [A-Za-z0-9_.-], 0..MAX_TICKET_LENGTH chars)
 *   0x02  bitfield   pieceCount u32 (≤ MAX_PIECES) | ceil(pieceCount/8) bytes,
 *                    piece i = bit 0x80>>(i%8) of byte i>>3, spare bits zero
 *   0x03  have       piece u32
 *   0x04  request    piece u32 | offset u32 | length u32
 *   0x05  piece      piece u32 | offset u32 | data (rest, 1..MAX_BLOCK_BYTES)
 *   0x06  cancel     piece u32 | offset u32 | length u32
 *   0x07  reject     flags u8 (bit 0: about a request; other bits zero)
 *                    | piece u32 | offset u32 | length u32 (all 0 unless bit 0)
 *                    | codeLength u8 | code ASCII (a code of protocol/errors.ts)
 *                    | reasonLength u16 (≤ MAX_REASON_BYTES) | reason UTF-8
 *   0x08  ticket     ticket (the whole body, ASCII compact JWS, 1..MAX_TICKET_LENGTH)
 *   0x09  corrupt    fileId 32B | piece u32 (downloader → seeder: that piece, as
 *                    served, failed its hash here)
 *   0x0a  order      (empty; downloader → seeder, only to a seeder whose hello
 *                    names the `order` feature: this downloader fetches in file
 *                    order, so show it every piece held, not a spread window)
 *   0x0b  ping       nonce u32 (downloader → seeder, only to a seeder whose hello
 *                    names the `ping` feature: a path that may drop silently, a
 *                    relayed circuit or a punched UDP stream, is checked each second)
 *   0x0c  pong       nonce u32 (seeder → downloader: the answer to ping, its nonce)
 *   (the next new frame type is 0x0d)
 *
 * Range rules checked by the codec (the file's own bounds are the server's
 * job): piece < MAX_PIECES; 1 ≤ block length ≤ MAX_BLOCK_BYTES; offset +
 * length ≤ MAX_PIECE_SIZE_BYTES; every body has exactly its layout's length.
 *
 * The conversation (one connection = one file):
 *   downloader → seeder  hello (its peer id, the file id, its ticket)
 *   seeder → downloader  hello (the seeder's peer id, same file id, and in the
 *                        ticket's place the features it understands, joined
 *                        by '.': `order` (it takes an order frame); empty from
 *                        older seeders, and a downloader ignores features it
 *                        does not know), then bitfield, then have as pieces
 *                        arrive
 *   downloader → seeder  order, once, if it asks for pieces in file order and
 *                        the seeder named the `order` feature (an older seeder
 *                        would close on an unknown frame type)
 *   seeder → downloader  bitfield: the answer to order, every piece it holds
 *                        (not a spread window); the downloader ignores the
 *                        bitfield and haves before it
 *   downloader → seeder  request… / cancel…, and corrupt for a piece whose
 *                        hash failed (the seeder may re-check its file; it
 *                        sends no answer)
 *   seeder → downloader  piece… or reject (about that request), in any order
 *                        (match them by piece/offset); a cancelled request not
 *                        yet started gets no answer
 *   downloader → seeder  ticket: a fresh ticket for the same file, peer and
 *                        user before the current one expires; the seeder
 *                        checks it as a hello's and moves the connection's
 *                        deadline to its expiry (a refused one closes the
 *                        connection with its code). At the deadline the
 *                        seeder closes with TICKET_EXPIRED.
 *   downloader → seeder  ping, on a relayed or punched path, to a seeder that named
 *                        the `ping` feature; the seeder answers pong with its nonce
 *   either side          keepalive when idle; reject with flags 0 = "closing
 *                        the connection because <code>", then end
 *
 * A refused hello (bad ticket, unknown file, busy seeder) gets exactly one
 * connection reject (TICKET_INVALID, TICKET_EXPIRED, TICKET_WRONG_FILE,
 * TICKET_WRONG_PEER, PEER_MISMATCH, NOT_SHARING, BUSY, PROTOCOL_ERROR) and the
 * end of the stream. The seeder accepts only handshake-sized frames
 * (HANDSHAKE_MAX_FRAME_LENGTH) from a downloader; a downloader should do the
 * same until the seeder's hello, then raise its limit to MAX_FRAME_LENGTH.
 */
import { Bitfield } from '../core/bitfield.js';
import { CoterieError, type ErrorCode, isErrorCode } from '../protocol/errors.js';
import { MAX_PIECE_SIZE_BYTES, MAX_PIECES } from '../protocol/manifest.js';
import { MAX_TICKET_LENGTH } from '../protocol/tickets.js';

export const PROTOCOL_VERSION = 1;
/** Largest block a request may ask for (and a piece frame may carry). */
export const MAX_BLOCK_BYTES = 1024 * 1024;
/** Bytes before the body: the length prefix and the type byte. */
export const FRAME_HEADER_BYTES = 5;
/** Bytes of a piece frame's payload (what the length prefix counts) before its data: type, piece, offset. */
export const PIECE_FRAME_HEAD_BYTES = 1 + 8;
/** Largest `length` field accepted: a piece frame's type, piece, offset and a full block. */
export const MAX_FRAME_LENGTH = PIECE_FRAME_HEAD_BYTES + MAX_BLOCK_BYTES;
/**
 * Largest `length` a seeder accepts from a downloader, which sends no block:
 * a hello (≤ 4.2 KB) fits, a block does not.
 */
export const HANDSHAKE_MAX_FRAME_LENGTH = 16 * 1024;
/**
 * Largest `length` a downloader accepts before the seeder's hello is taken:
 * the hello and the bitfield right behind it (of MAX_PIECES: 128 KiB + 5)
 * may arrive in one read, and are measured before the hello is handled.
 */
export const SEEDER_HANDSHAKE_MAX_FRAME_LENGTH = 1 + 4 + MAX_PIECES / 8;
/** Longest reject reason on the wire; longer ones are cut when encoding. */
export const MAX_REASON_BYTES = 256;

export const FRAME_TYPES = Object.freeze({
  keepalive: 0x00,
  hello: 0x01,
  bitfield: 0x02,
  have: 0x03,
  request: 0x04,
  piece: 0x05,
  cancel: 0x06,
  reject: 0x07,
  ticket: 0x08,
  corrupt: 0x09,
  order: 0x0a,
  ping: 0x0b,
  pong: 0x0c,
} as const);

export type FrameType = keyof typeof FRAME_TYPES;

/** A block of a piece: the unit of request, cancel and (scoped) reject. */
export interface BlockRef {
  piece: number;
  offset: number;
  length: number;
}

export interface KeepaliveFrame {
  type: 'keepalive';
}
export interface HelloFrame {
  type: 'hello';
  version: number;
  /** Lowercase hex SHA-256. */
  fileId: string;
  /** The sender's peer id: lowercase hex SHA-256 of its certificate's public key. */
  peerId: string;
  /** The download ticket (downloader → seeder); from a seeder, its features (SEEDER_FEATURES). */
  ticket: string;
}
export interface BitfieldFrame {
  type: 'bitfield';
  bitfield: Bitfield;
}
export interface HaveFrame {
  type: 'have';
  piece: number;
}
export interface RequestFrame extends BlockRef {
  type: 'request';
}
export interface PieceFrame {
  type: 'piece';
  piece: number;
  offset: number;
  /** The block's bytes; may be a view into the received chunk (no copy). */
  data: Buffer;
}
export interface CancelFrame extends BlockRef {
  type: 'cancel';
}
export interface RejectFrame {
  type: 'reject';
  /** The request refused, or null when the whole connection is refused or closed. */
  request: BlockRef | null;
  code: ErrorCode;
  reason: string;
}

/** A renewed download ticket (downloader → seeder) for the connection's file. */
export interface TicketFrame {
  type: 'ticket';
  ticket: string;
}

export interface CorruptFrame {
  type: 'corrupt';
  /** The file of the connection (lowercase hex): a report names what it is about. */
  fileId: string;
  piece: number;
}

/**
 * The downloader fetches in file order (download_file --sequential): a spreading seeder shows it
 * every piece instead of a window (serve-session.ts).
 */
export interface OrderFrame {
  type: 'order';
}

/** A downloader checks a path that may drop silently (wire/path-keepalive.ts); the seeder answers pong. */
export interface PingFrame {
  type: 'ping';
  nonce: number;
}
export interface PongFrame {
  type: 'pong';
  nonce: number;
}

/**
 * What a seeder's hello names, in its ticket's place, that it understands. `nohaves`: it makes
 * no use of what the downloader holds (only a spreading seeder does, spread.ts), so the
 * downloader sends it neither its bitfield nor a have per piece: in a swarm every downloader
 * serves every other, and those were fifteen frames per piece verified, each decoded and
 * dropped, many in a TLS record, a send and a wake-up of their own. A seeder that does not
 * name it (an older one, or one that spreads) is told as before. `spread`: it holds every piece
 * and shows them a window at a time, so a piece it has not shown yet is one it can still bring
 * (a download does not give up on a piece while such a seeder is connected).
 */
export const SEEDER_FEATURES = Object.freeze({
  order: 'order',
  ping: 'ping',
  noHaves: 'nohaves',
  spread: 'spread',
} as const);

/** The features a seeder's hello names (its ticket field: '.'-joined words; empty from older seeders). */
export function seederFeatures(hello: HelloFrame): Set<string> {
  return new Set(hello.ticket.split('.').filter((w) => w !== ''));
}

export type Frame =
  | PingFrame
  | PongFrame
  | OrderFrame
  | TicketFrame
  | CorruptFrame
  | KeepaliveFrame
  | HelloFrame
  | BitfieldFrame
  | HaveFrame
  | RequestFrame
  | PieceFrame
  | CancelFrame
  | RejectFrame;

function protocolError(message: string): CoterieError {
  return new CoterieError('PROTOCOL_ERROR', message);
}

/** A bounds-checked reader over one frame body; every read failure is a PROTOCOL_ERROR. */
class BodyReader {
  #pos = 0;
  constructor(
    private readonly body: Buffer,
    private readonly what: string,
  ) {}
  #need(n: number): void {
    if (this.#pos + n > this.body.length) throw protocolError(`${this.what} frame truncated`);
  }
  u8(): number {
    this.#need(1);
    return this.body.readUInt8(this.#pos++);
  }
  u16(): number {
    this.#need(2);
    const v = this.body.readUInt16BE(this.#pos);
    this.#pos += 2;
    return v;
  }
  u32(): number {
    this.#need(4);
    const v = this.body.readUInt32BE(this.#pos);
    this.#pos += 4;
    return v;
  }
  bytes(n: number): Buffer {
    this.#need(n);
    const v = this.body.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return v;
  }
  rest(): Buffer {
    const v = this.body.subarray(this.#pos);
    this.#pos = this.body.length;
    return v;
  }
  end(): void {
    if (this.#pos !== this.body.length) throw protocolError(`${this.what} frame has trailing bytes`);
  }
}

function checkPiece(piece: number, what: string): void {
  if (!Number.isInteger(piece) || piece < 0 || piece >= MAX_PIECES) {
    throw protocolError(`${what}: piece ${piece} outside 0..${MAX_PIECES - 1}`);
  }
}

function checkBlock(piece: number, offset: number, length: number, what: string): void {
  checkPiece(piece, what);
  if (!Number.isInteger(length) || length < 1 || length > MAX_BLOCK_BYTES) {
    throw protocolError(`${what}: block length ${length} outside 1..${MAX_BLOCK_BYTES}`);
  }
  if (!Number.isInteger(offset) || offset < 0 || offset + length > MAX_PIECE_SIZE_BYTES) {
    throw protocolError(`${what}: block ${offset}+${length} past the largest piece size`);
  }
}

const HEX64_RE = /^[0-9a-f]{64}$/;
const TICKET_RE = /^[A-Za-z0-9_.-]*$/;
const CODE_RE = /^[A-Z_]{1,64}$/;

function idBytes(hex: string, what: string): Buffer {
  if (typeof hex !== 'string' || !HEX64_RE.test(hex)) throw protocolError(`${what} must be 64 lowercase hex`);
  return Buffer.from(hex, 'hex');
}

function blockBody(piece: number, offset: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(12);
  b.writeUInt32BE(piece, 0);
  b.writeUInt32BE(offset, 4);
  b.writeUInt32BE(length, 8);
  return b;
}

function readBlock(r: BodyReader, what: string): BlockRef {
  const piece = r.u32();
  const offset = r.u32();
  const length = r.u32();
  r.end();
  checkBlock(piece, offset, length, what);
  return { piece, offset, length };
}

/** Cuts a string to at most `max` UTF-8 bytes without splitting a character. */
function utf8Prefix(s: string, max: number): Buffer {
  const b = Buffer.from(s, 'utf8');
  if (b.length <= max) return b;
  let end = max;
  // Step back over continuation bytes (10xxxxxx) so no character is split.
  while (end > 0 && (b[end]! & 0xc0) === 0x80) end--;
  return b.subarray(0, end);
}

/**
 * One codec per frame type: `encode` returns the body chunks (after the type
 * byte), `decode` parses a body already bounded by the length prefix.
 */
interface Codec<F extends Frame> {
  encode(frame: F): Buffer[];
  decode(body: Buffer): F;
}

/** The ticket text of a hello or a ticket frame: compact-JWS characters only, at most MAX_TICKET_LENGTH. */
function decodeTicketText(raw: Buffer, what: string): string {
  if (raw.length > MAX_TICKET_LENGTH) throw protocolError(`${what}: ticket too long`);
  const ticket = raw.toString('latin1');
  if (!TICKET_RE.test(ticket)) throw protocolError(`${what}: ticket is not a compact JWS`);
  return ticket;
}

function checkTicketText(ticket: string, what: string): void {
  if (typeof ticket !== 'string' || ticket.length > MAX_TICKET_LENGTH || !TICKET_RE.test(ticket)) {
    throw protocolError(`${what}: ticket too long or not a compact JWS`);
  }
}

const codecs: { [K in FrameType]: Codec<Extract<Frame, { type: K }>> } = {
  keepalive: {
    encode: () => [],
    decode(body) {
      new BodyReader(body, 'keepalive').end();
      return { type: 'keepalive' };
    },
  },

  hello: {
    encode(f) {
      if (!Number.isInteger(f.version) || f.version < 0 || f.version > 0xffff) {
        throw protocolError(`hello: version ${f.version} outside 0..65535`);
      }
      checkTicketText(f.ticket, 'hello');
      const head = Buffer.allocUnsafe(2);
      head.writeUInt16BE(f.version, 0);
      return [
        head,
        idBytes(f.fileId, 'hello fileId'),
        idBytes(f.peerId, 'hello peerId'),
        Buffer.from(f.ticket),
      ];
    },
    decode(body) {
      const r = new BodyReader(body, 'hello');
      const version = r.u16();
      const fileId = r.bytes(32).toString('hex');
      const peerId = r.bytes(32).toString('hex');
      const ticket = decodeTicketText(r.rest(), 'hello');
      return { type: 'hello', version, fileId, peerId, ticket };
    },
  },

  bitfield: {
    encode(f) {
      const head = Buffer.allocUnsafe(4);
      head.writeUInt32BE(f.bitfield.length, 0);
      return [head, f.bitfield.toBuffer()];
    },
    decode(body) {
      const r = new BodyReader(body, 'bitfield');
      const count = r.u32();
      if (count > MAX_PIECES) throw protocolError(`bitfield: ${count} pieces exceeds ${MAX_PIECES}`);
      const bits = r.bytes(Bitfield.byteLength(count));
      r.end();
      return { type: 'bitfield', bitfield: Bitfield.fromBuffer(bits, count) };
    },
  },

  have: {
    encode(f) {
      checkPiece(f.piece, 'have');
      const b = Buffer.allocUnsafe(4);
      b.writeUInt32BE(f.piece, 0);
      return [b];
    },
    decode(body) {
      const r = new BodyReader(body, 'have');
      const piece = r.u32();
      r.end();
      checkPiece(piece, 'have');
      return { type: 'have', piece };
    },
  },

  request: {
    encode(f) {
      checkBlock(f.piece, f.offset, f.length, 'request');
      return [blockBody(f.piece, f.offset, f.length)];
    },
    decode(body) {
      return { type: 'request', ...readBlock(new BodyReader(body, 'request'), 'request') };
    },
  },

  piece: {
    encode(f) {
      checkBlock(f.piece, f.offset, f.data.length, 'piece');
      const head = Buffer.allocUnsafe(8);
      head.writeUInt32BE(f.piece, 0);
      head.writeUInt32BE(f.offset, 4);
      return [head, f.data];
    },
    decode(body) {
      const r = new BodyReader(body, 'piece');
      const piece = r.u32();
      const offset = r.u32();
      const data = r.rest();
      checkBlock(piece, offset, data.length, 'piece');
      return { type: 'piece', piece, offset, data };
    },
  },

  cancel: {
    encode(f) {
      checkBlock(f.piece, f.offset, f.length, 'cancel');
      return [blockBody(f.piece, f.offset, f.length)];
    },
    decode(body) {
      return { type: 'cancel', ...readBlock(new BodyReader(body, 'cancel'), 'cancel') };
    },
  },

  reject: {
    encode(f) {
      if (!isErrorCode(f.code)) throw protocolError(`reject: unknown code ${String(f.code)}`);
      const head = Buffer.allocUnsafe(13);
      if (f.request === null) {
        head.fill(0);
      } else {
        checkBlock(f.request.piece, f.request.offset, f.request.length, 'reject');
        head.writeUInt8(1, 0);
        blockBody(f.request.piece, f.request.offset, f.request.length).copy(head, 1);
      }
      const code = Buffer.from(f.code, 'latin1');
      const reason = utf8Prefix(f.reason, MAX_REASON_BYTES);
      const codeLength = Buffer.from([code.length]);
      const reasonLength = Buffer.allocUnsafe(2);
      reasonLength.writeUInt16BE(reason.length, 0);
      return [head, codeLength, code, reasonLength, reason];
    },
    decode(body) {
      const r = new BodyReader(body, 'reject');
      const flags = r.u8();
      if ((flags & ~1) !== 0) throw protocolError(`reject: unknown flags 0x${flags.toString(16)}`);
      const piece = r.u32();
      const offset = r.u32();
      const length = r.u32();
      let request: BlockRef | null = null;
      if (flags & 1) {
        checkBlock(piece, offset, length, 'reject');
        request = { piece, offset, length };
      } else if (piece !== 0 || offset !== 0 || length !== 0) {
        throw protocolError('reject: block fields must be zero for a connection reject');
      }
      const code = r.bytes(r.u8()).toString('latin1');
      if (!CODE_RE.test(code) || !isErrorCode(code)) throw protocolError('reject: unknown error code');
      const reasonLength = r.u16();
      if (reasonLength > MAX_REASON_BYTES) throw protocolError('reject: reason too long');
      const reason = r.bytes(reasonLength).toString('utf8');
      r.end();
      return { type: 'reject', request, code, reason };
    },
  },

  ticket: {
    encode(f) {
      checkTicketText(f.ticket, 'ticket');
      if (f.ticket.length === 0) throw protocolError('ticket: empty ticket');
      return [Buffer.from(f.ticket, 'latin1')];
    },
    decode(body) {
      if (body.length === 0) throw protocolError('ticket: empty ticket');
      return { type: 'ticket', ticket: decodeTicketText(body, 'ticket') };
    },
  },
  corrupt: {
    encode(f) {
      checkPiece(f.piece, 'corrupt');
      const piece = Buffer.allocUnsafe(4);
      piece.writeUInt32BE(f.piece, 0);
      return [idBytes(f.fileId, 'corrupt fileId'), piece];
    },
    decode(body) {
      const r = new BodyReader(body, 'corrupt');
      const fileId = r.bytes(32).toString('hex');
      const piece = r.u32();
      r.end();
      checkPiece(piece, 'corrupt');
      return { type: 'corrupt', fileId, piece };
    },
  },

  order: {
    encode: () => [],
    decode(body) {
      new BodyReader(body, 'order').end();
      return { type: 'order' };
    },
  },

  ping: nonceCodec('ping'),
  pong: nonceCodec('pong'),
};

/** The codec of a frame whose body is a nonce u32 (ping, pong). */
function nonceCodec<T extends 'ping' | 'pong'>(type: T): Codec<Extract<Frame, { type: T }>> {
  return {
    encode(frame) {
      const f = frame as PingFrame | PongFrame;
      if (!Number.isInteger(f.nonce) || f.nonce < 0 || f.nonce > 0xffffffff)
        throw protocolError(`${type}: nonce out of range`);
      const b = Buffer.allocUnsafe(4);
      b.writeUInt32BE(f.nonce, 0);
      return [b];
    },
    decode(body) {
      const r = new BodyReader(body, type);
      const nonce = r.u32();
      r.end();
      return { type, nonce } as Extract<Frame, { type: T }>;
    },
  };
}

const TYPE_BY_ID: ReadonlyMap<number, FrameType> = new Map(
  Object.entries(FRAME_TYPES).map(([name, id]) => [id, name as FrameType]),
);

/**
 * Encodes a frame as a list of chunks (header first) without copying a
 * piece's data: write them corked, or concatenate with `encodeFrame`.
 * Throws PROTOCOL_ERROR for a frame that breaks the layout's rules (a local bug).
 */
export function encodeFrameChunks(frame: Frame): Buffer[] {
  const codec = codecs[frame.type] as Codec<Frame> | undefined;
  if (codec === undefined) throw protocolError(`unknown frame type ${String(frame.type)}`);
  const body = codec.encode(frame);
  let length = 1;
  for (const b of body) length += b.length;
  if (length > MAX_FRAME_LENGTH) throw new CoterieError('FRAME_TOO_LARGE', `${frame.type} frame too large`);
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  header.writeUInt32BE(length, 0);
  header.writeUInt8(FRAME_TYPES[frame.type], 4);
  return [header, ...body];
}

/** Bytes of a piece frame before its data, length prefix included. */
export const PIECE_FRAME_PREFIX_BYTES = 4 + PIECE_FRAME_HEAD_BYTES;

/**
 * Makes `framed` a whole piece frame: its first PIECE_FRAME_PREFIX_BYTES
 * become the header, the rest is the block's data, already in place (a
 * seeder reads the block from disk just past the header's room). Sent as one
 * buffer, a block is not copied again: Node's TLS socket encrypts a single
 * buffer where it lies, but first concatenates a corked header and data.
 * Throws PROTOCOL_ERROR for a block that breaks the layout's rules.
 */
export function encodePieceFrameInPlace(framed: Buffer, piece: number, offset: number): Buffer {
  const length = framed.length - PIECE_FRAME_PREFIX_BYTES;
  checkBlock(piece, offset, length, 'piece');
  framed.writeUInt32BE(PIECE_FRAME_HEAD_BYTES + length, 0);
  framed.writeUInt8(FRAME_TYPES.piece, 4);
  framed.writeUInt32BE(piece, 5);
  framed.writeUInt32BE(offset, 9);
  return framed;
}

/** Encodes a frame into one buffer (length prefix included). */
export function encodeFrame(frame: Frame): Buffer {
  return Buffer.concat(encodeFrameChunks(frame));
}

/** Decodes the type byte and body of one frame (the bytes the length prefix counts). */
function decodeTypeAndBody(payload: Buffer): Frame {
  const type = TYPE_BY_ID.get(payload[0]!);
  if (type === undefined) throw protocolError(`unknown frame type 0x${payload[0]!.toString(16)}`);
  return (codecs[type] as Codec<Frame>).decode(payload.subarray(1));
}

/**
 * Decodes exactly one whole frame (length prefix included). Throws a
 * CoterieError: PROTOCOL_ERROR or FRAME_TOO_LARGE.
 */
export function decodeFrame(bytes: Buffer, maxFrameLength = MAX_FRAME_LENGTH): Frame {
  if (bytes.length < 4) throw protocolError('frame truncated: no length prefix');
  const length = bytes.readUInt32BE(0);
  if (length > maxFrameLength) throw tooLarge(length, maxFrameLength);
  if (length === 0) throw protocolError('empty frame: no type byte');
  if (bytes.length !== 4 + length)
    throw protocolError(`frame of ${bytes.length - 4} bytes, prefix says ${length}`);
  return decodeTypeAndBody(bytes.subarray(4));
}

function tooLarge(length: number, max: number): CoterieError {
  return new CoterieError('FRAME_TOO_LARGE', `frame of ${length} bytes exceeds the maximum of ${max}`);
}

export interface DecodeResult {
  /** Frames completed by this chunk, in order. */
  frames: Frame[];
  /** Set when the stream broke the protocol; the decoder then refuses more input. */
  error: CoterieError | null;
}

/**
 * A streaming decoder: feed it chunks as they arrive, in any sizes. It never
 * throws: a broken stream yields an error (after the frames decoded before
 * it), and the decoder stays failed. A frame whose declared length exceeds
 * `maxFrameLength` is refused on its first four bytes, before buffering.
 */
export class FrameDecoder {
  /** The largest `length` accepted; may be raised after the handshake. */
  maxFrameLength: number;
  readonly #prefix = Buffer.alloc(4);
  #prefixFilled = 0;
  #payload: Buffer | null = null;
  #payloadFilled = 0;
  #error: CoterieError | null = null;

  readonly #allocate: (length: number) => Buffer;

  /**
   * `allocate` supplies the buffer for a frame that spans chunks (the only
   * case that buffers); a downloader passes pooled buffers so that blocks
   * are not garbage for the collector at hundreds of MiB/s.
   */
  constructor(options: { maxFrameLength?: number; allocate?: (length: number) => Buffer } = {}) {
    this.maxFrameLength = options.maxFrameLength ?? MAX_FRAME_LENGTH;
    this.#allocate = options.allocate ?? Buffer.allocUnsafe;
  }

  get error(): CoterieError | null {
    return this.#error;
  }

  /** True while a frame is partly received (ending the stream now truncates it). */
  get midFrame(): boolean {
    return this.#prefixFilled > 0 || this.#payload !== null;
  }

  /** Bytes held for an incomplete frame. */
  get bufferedBytes(): number {
    return this.#prefixFilled + this.#payloadFilled;
  }

  push(chunk: Uint8Array): DecodeResult {
    const frames: Frame[] = [];
    if (this.#error !== null) return { frames, error: this.#error };
    const buf = Buffer.isBuffer(chunk)
      ? chunk
      : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    try {
      let pos = 0;
      while (pos < buf.length) {
        if (this.#payload === null) {
          let length: number;
          if (this.#prefixFilled === 0 && buf.length - pos >= 4) {
            length = buf.readUInt32BE(pos);
            pos += 4;
          } else {
            const take = Math.min(4 - this.#prefixFilled, buf.length - pos);
            buf.copy(this.#prefix, this.#prefixFilled, pos, pos + take);
            this.#prefixFilled += take;
            pos += take;
            if (this.#prefixFilled < 4) break;
            this.#prefixFilled = 0;
            length = this.#prefix.readUInt32BE(0);
          }
          this.#checkLength(length);
          if (buf.length - pos >= length) {
            // The whole frame is in this chunk: decode it in place, no copy.
            frames.push(decodeTypeAndBody(buf.subarray(pos, pos + length)));
            pos += length;
          } else {
            this.#beginPayload(length);
          }
        } else {
          const payload = this.#payload;
          const take = Math.min(payload.length - this.#payloadFilled, buf.length - pos);
          buf.copy(payload, this.#payloadFilled, pos, pos + take);
          this.#payloadFilled += take;
          pos += take;
          if (this.#payloadFilled === payload.length) frames.push(this.#endPayload());
        }
      }
    } catch (err) {
      this.#failWith(err);
    }
    return { frames, error: this.#error };
  }

  /**
   * Where the next bytes of the stream belong, for a transport that reads
   * straight into our buffers (see placed-reads.ts): the rest of the length
   * prefix, or the rest of the frame being received (its buffer comes from
   * `allocate`, so a block lands in its slot). Never empty. The transport
   * writes up to its length there and then calls commit(). Mixing with push()
   * is fine: both keep the same state.
   */
  readTarget(): Buffer {
    // Once failed, bytes still arriving (the connection reads to the peer's end) are ignored.
    // Never hand out an empty target: Node's TLS socket would loop on it forever.
    if (this.#error !== null) {
      this.#discard ??= Buffer.allocUnsafe(16 * 1024);
      return this.#discard;
    }
    if (this.#payload !== null) return this.#payload.subarray(this.#payloadFilled);
    return this.#prefix.subarray(this.#prefixFilled);
  }

  #discard: Buffer | undefined;

  /**
   * Takes `n` bytes written at the start of the last readTarget(), as push()
   * takes a chunk: never throws, and a frame completed by them is returned.
   */
  commit(n: number): DecodeResult {
    const frames: Frame[] = [];
    if (this.#error !== null) return { frames, error: this.#error };
    try {
      const room =
        this.#payload === null ? 4 - this.#prefixFilled : this.#payload.length - this.#payloadFilled;
      if (!(Number.isInteger(n) && n >= 0 && n <= room))
        throw new RangeError(`commit(${n}) past the read target of ${room} bytes`);
      if (this.#payload !== null) {
        this.#payloadFilled += n;
        if (this.#payloadFilled === this.#payload.length) frames.push(this.#endPayload());
      } else {
        this.#prefixFilled += n;
        if (this.#prefixFilled === 4) {
          this.#prefixFilled = 0;
          const length = this.#prefix.readUInt32BE(0);
          this.#checkLength(length);
          this.#beginPayload(length);
        }
      }
    } catch (err) {
      this.#failWith(err);
    }
    return { frames, error: this.#error };
  }

  #checkLength(length: number): void {
    if (length > this.maxFrameLength) throw tooLarge(length, this.maxFrameLength);
    if (length === 0) throw protocolError('empty frame: no type byte');
  }

  #beginPayload(length: number): void {
    this.#payload = this.#allocate(length);
    this.#payloadFilled = 0;
  }

  #endPayload(): Frame {
    // Decoded before it is let go: a frame that breaks the rules stays for abandon() to hand back.
    const frame = decodeTypeAndBody(this.#payload!);
    this.#payload = null;
    this.#payloadFilled = 0;
    return frame;
  }

  /** Fails for good; a partly received frame's buffer stays for abandon(). */
  #failWith(err: unknown): void {
    this.#error =
      err instanceof CoterieError
        ? err
        : new CoterieError('PROTOCOL_ERROR', 'undecodable frame', { cause: err });
  }

  /**
   * Drops a partly received frame for good (the stream is gone) and returns
   * its buffer, from `allocate`, so that its owner can reuse it; null when no
   * frame was partly received. The decoder refuses input afterwards.
   */
  abandon(): Buffer | null {
    const partial = this.#payload;
    this.#payload = null;
    this.#payloadFilled = 0;
    this.#prefixFilled = 0;
    this.#error ??= protocolError('stream closed');
    return partial;
  }

  /**
   * Call when the stream ends: a partly received frame becomes a
   * PROTOCOL_ERROR (truncated), otherwise null.
   */
  end(): CoterieError | null {
    if (this.#error !== null) return this.#error;
    if (this.midFrame) this.#error = protocolError('stream ended in the middle of a frame');
    return this.#error;
  }
}
