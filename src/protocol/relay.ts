/**
 * The relay protocol (issue 19): how a peer that cannot be dialled keeps a
 * reservation on a relay, and how a downloader reaches it through a circuit.
 *
 * Every connection to a relay is TCP and starts with control frames: a
 * 2-byte big-endian length (1 … MAX_RELAY_FRAME_BYTES) and that many bytes of
 * UTF-8 JSON, one RelayClientFrame or RelayServerFrame. The length is checked
 * before anything is buffered.
 *
 * - A reservation: the reserved peer sends `reserve` (its session token and
 *   peer id) and gets `reserved` (until when) or `refused`; it sends `reserve`
 *   again before the expiry to renew. When a downloader asks for it, the relay
 *   sends `incoming` (a circuit id) on this connection.
 * - A circuit: the downloader opens a connection and sends `connect` (its
 *   token and the peer id it wants). The reserved peer opens another and sends
 *   `accept` with the circuit id. Both get `connected`, and from the byte after
 *   that frame each connection carries the other's bytes untouched: the two
 *   peers run TLS 1.3 (the downloader pinning the seeder's peer id) and the
 *   wire protocol inside, so the relay splices ciphertext only.
 *
 * A relay that refuses says why with a code from the closed list
 * (RELAY_FORBIDDEN, RELAY_BUSY, UNAVAILABLE, PROTOCOL_ERROR) and closes.
 */
import { type Static, Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { formatHostPort, type HostPort, parseHostPort } from './addresses.js';
import { CoterieError, ERROR_CODES, type ErrorCode } from './errors.js';
import { HEX64_PATTERN } from './names.js';

export const RELAY_PROTOCOL_VERSION = 1;
/** Control frames are small JSON objects: a token, a peer id, a reason. */
export const MAX_RELAY_FRAME_BYTES = 4096;
export const RELAY_FRAME_HEADER_BYTES = 2;
/**
 * How a relayed address is spelled among a peer's addresses: `relay://host:port`,
 * the relay the peer holds a reservation on. Peers that do not know relays skip it
 * (it does not parse as host:port).
 */
export const RELAY_ADDRESS_PREFIX = 'relay://';

const Hex64 = Type.String({ pattern: HEX64_PATTERN, minLength: 64, maxLength: 64 });
const Token = Type.String({ minLength: 1, maxLength: 256 });
const CircuitId = Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' });

export const RelayClientFrame = Type.Union([
  Type.Object(
    { t: Type.Literal('reserve'), v: Type.Integer({ minimum: 1 }), token: Token, peerId: Hex64 },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      t: Type.Literal('connect'),
      v: Type.Integer({ minimum: 1 }),
      token: Token,
      peerId: Hex64,
      target: Hex64,
    },
    { additionalProperties: false },
  ),
  Type.Object(
    { t: Type.Literal('accept'), v: Type.Integer({ minimum: 1 }), token: Token, circuit: CircuitId },
    { additionalProperties: false },
  ),
]);
export type RelayClientFrame = Static<typeof RelayClientFrame>;

export const RelayServerFrame = Type.Union([
  Type.Object(
    {
      t: Type.Literal('reserved'),
      expiresAt: Type.Integer({ minimum: 0 }),
      ttlMs: Type.Integer({ minimum: 1 }),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    { t: Type.Literal('incoming'), circuit: CircuitId, from: Hex64 },
    { additionalProperties: false },
  ),
  Type.Object({ t: Type.Literal('connected'), peer: Hex64 }, { additionalProperties: false }),
  Type.Object(
    {
      t: Type.Literal('refused'),
      code: Type.Union(ERROR_CODES.map((c) => Type.Literal(c))),
      message: Type.String({ maxLength: 1024 }),
    },
    { additionalProperties: false },
  ),
]);
export type RelayServerFrame = Static<typeof RelayServerFrame>;

const clientCheck = TypeCompiler.Compile(RelayClientFrame);
const serverCheck = TypeCompiler.Compile(RelayServerFrame);

/** One frame's bytes: the length, then the JSON. */
export function encodeRelayFrame(frame: RelayClientFrame | RelayServerFrame): Buffer {
  const body = Buffer.from(JSON.stringify(frame), 'utf8');
  if (body.length > MAX_RELAY_FRAME_BYTES) {
    throw new CoterieError('FRAME_TOO_LARGE', `a relay frame is at most ${MAX_RELAY_FRAME_BYTES} bytes`);
  }
  const head = Buffer.alloc(RELAY_FRAME_HEADER_BYTES);
  head.writeUInt16BE(body.length, 0);
  return Buffer.concat([head, body]);
}

/**
 * Reads control frames off a byte stream. push() takes whatever arrived and
 * returns the frames it completed; it stops after a frame that hands the
 * connection over to the peers (`connect`, `accept`, `connected`) or ends it
 * (`refused`), and rest() gives the bytes that came behind it, which belong
 * to the circuit. Throws FRAME_TOO_LARGE or
 * PROTOCOL_ERROR on bad input, and never buffers more than one frame.
 */
export class RelayFrameDecoder<F extends RelayClientFrame | RelayServerFrame> {
  #buffered: Buffer = Buffer.alloc(0);
  constructor(readonly side: 'client' | 'server') {}

  push(chunk: Buffer): F[] {
    this.#buffered = this.#buffered.length === 0 ? chunk : Buffer.concat([this.#buffered, chunk]);
    const out: F[] = [];
    while (this.#buffered.length >= RELAY_FRAME_HEADER_BYTES) {
      const length = this.#buffered.readUInt16BE(0);
      if (length === 0 || length > MAX_RELAY_FRAME_BYTES) {
        throw new CoterieError(
          'FRAME_TOO_LARGE',
          `a relay frame of ${length} bytes (1 … ${MAX_RELAY_FRAME_BYTES} allowed)`,
        );
      }
      if (this.#buffered.length < RELAY_FRAME_HEADER_BYTES + length) break;
      const body = this.#buffered.subarray(RELAY_FRAME_HEADER_BYTES, RELAY_FRAME_HEADER_BYTES + length);
      this.#buffered = this.#buffered.subarray(RELAY_FRAME_HEADER_BYTES + length);
      const frame = this.#parse(body);
      out.push(frame);
      // Past the hand-over the bytes are the circuit's: leave them for rest().
      if (frame.t !== 'reserve' && frame.t !== 'reserved' && frame.t !== 'incoming') break;
    }
    return out;
  }

  /** The bytes received after the last frame returned. */
  rest(): Buffer {
    const r = this.#buffered;
    this.#buffered = Buffer.alloc(0);
    return r;
  }

  #parse(body: Buffer): F {
    let value: unknown;
    try {
      value = JSON.parse(body.toString('utf8'));
    } catch {
      throw new CoterieError('PROTOCOL_ERROR', 'a relay frame is not JSON');
    }
    const check = this.side === 'client' ? clientCheck : serverCheck;
    if (!check.Check(value)) {
      const first = check.Errors(value).First();
      throw new CoterieError(
        'PROTOCOL_ERROR',
        `bad relay frame${first === undefined ? '' : `: ${first.path || '/'} ${first.message}`}`,
      );
    }
    return value as F;
  }
}

/** The frame a relay sends before closing a refused connection. */
export function refusal(code: ErrorCode, message: string): RelayServerFrame {
  return { t: 'refused', code, message: message.slice(0, 1024) };
}

/** `relay://host:port` for a relay at that address. */
export function formatRelayAddress(relay: HostPort): string {
  return `${RELAY_ADDRESS_PREFIX}${formatHostPort(relay.host, relay.port)}`;
}

/** The relay named by a `relay://host:port` address; undefined for any other address. */
export function parseRelayAddress(address: string): HostPort | undefined {
  if (!address.startsWith(RELAY_ADDRESS_PREFIX)) return undefined;
  return parseHostPort(address.slice(RELAY_ADDRESS_PREFIX.length));
}
