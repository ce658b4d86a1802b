/**
 * The relay protocol (issue 19): how a peer that cannot be dialled keeps a
 * reservation on a relay, and how a downloader reaches it through a circuit.
 *
 * Every connection to a relay is TLS 1.3 over TCP (protocol 2; protocol 1 was
 * plain TCP and carried session tokens readable on the path). The client pins
 * the relay's certificate by the SHA-256 its listing carries
 * (`host:port#sha256=…`, RelayEndpoint) and refuses any other with
 * RELAY_CERT_CHANGED before a byte of its own is sent; a relay inside a
 * tracker presents the tracker's certificate. A connection whose first byte
 * is not a TLS handshake record (a protocol 1 client) gets one plain
 * `refused` frame (PROTOCOL_ERROR) and is closed.
 *
 * Inside TLS, control frames: a 2-byte big-endian length
 * (1 … MAX_RELAY_FRAME_BYTES) and that many bytes of UTF-8 JSON, one
 * RelayClientFrame or RelayServerFrame. The length is checked before anything
 * is buffered.
 *
 * - A reservation: the reserved peer sends `reserve` (its session token and
 *   peer id) and gets `reserved` (until when) or `refused`; it sends `reserve`
 *   again before the expiry to renew. When a downloader asks for it, the relay
 *   sends `incoming` (a circuit id) on this connection.
 * - A circuit: the downloader opens a connection and sends `connect` (its
 *   token and the peer id it wants). The reserved peer opens another and sends
 *   `accept` with the circuit id. Both get `connected`, and from the byte after
 *   that frame each connection's TLS carries the other's bytes untouched: the
 *   two peers run their own TLS 1.3 (the downloader pinning the seeder's peer
 *   id) and the wire protocol inside it, so the relay splices ciphertext only.
 *   TLS inside TLS, rather than the relay dropping to plain TCP after
 *   `connected`: TLS has no clean way to hand the bare socket back (records
 *   already read would be lost or replayed), and the outer layer also hides
 *   who talks to whom (`incoming` names the downloader).
 *
 * A relay that refuses says why with a code from the closed list
 * (RELAY_FORBIDDEN, RELAY_BUSY, UNAVAILABLE, PROTOCOL_ERROR) and closes.
 */
import { formatHostPort, type HostPort, parseHostPort } from './addresses.js';
import { CoterieError, type ErrorCode } from './errors.js';
import type { RelayClientFrame, RelayFrameChecks, RelayServerFrame } from './relay-schemas.js';

export type { RelayClientFrame, RelayServerFrame } from './relay-schemas.js';

export const RELAY_PROTOCOL_VERSION = 2;
/** Control frames are small JSON objects: a token, a peer id, a reason. */
export const MAX_RELAY_FRAME_BYTES = 4096;
export const RELAY_FRAME_HEADER_BYTES = 2;
/**
 * How a relayed address is spelled among a peer's addresses: `relay://host:port#sha256=…`,
 * the relay the peer holds a reservation on. Peers that do not know relays skip it
 * (it does not parse as host:port).
 */
export const RELAY_ADDRESS_PREFIX = 'relay://';

let checks: Promise<RelayFrameChecks> | undefined;

/**
 * The frames' schema checks, loaded with the first relay connection rather than with this
 * module: they are TypeBox's (about 220 module files, ~0.1 CPU-s to load and compile), and
 * this module comes with the wire's, so a process that never talks to a relay (a downloader
 * on a LAN, a seeder with a public port) would pay for them at every start. Cached.
 */
export function relayFrameChecks(): Promise<RelayFrameChecks> {
  checks ??= import('./relay-schemas.js').then((m) => m.RELAY_FRAME_CHECKS);
  return checks;
}

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
 * Reads control frames off a byte stream (its checks loaded first: relayFrameChecks()). push() takes whatever arrived and
 * returns the frames it completed; it stops after a frame that hands the
 * connection over to the peers (`connect`, `accept`, `connected`) or ends it
 * (`refused`), and rest() gives the bytes that came behind it, which belong
 * to the circuit. Throws FRAME_TOO_LARGE or
 * PROTOCOL_ERROR on bad input, and never buffers more than one frame.
 */
export class RelayFrameDecoder<F extends RelayClientFrame | RelayServerFrame> {
  #buffered: Buffer = Buffer.alloc(0);
  readonly #checks: RelayFrameChecks;
  /** Decodes what `side` sends, checked by `checks` (from relayFrameChecks()). */
  constructor(
    readonly side: 'client' | 'server',
    checks: RelayFrameChecks,
  ) {
    this.#checks = checks;
  }

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
    const check = this.#checks[this.side];
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

/** A relay as peers reach it: where, and the SHA-256 (lowercase hex) of the certificate it must show. */
export interface RelayEndpoint extends HostPort {
  fingerprint: string;
}

const RELAY_FINGERPRINT = /^(.*)#sha256=([0-9a-f]{64})$/;

/** `host:port#sha256=…`, as GET /v1/cluster, the cluster push and --extra-relay spell a relay. */
export function formatRelayEndpoint(relay: RelayEndpoint): string {
  return `${formatHostPort(relay.host, relay.port)}#sha256=${relay.fingerprint}`;
}

/**
 * The relay named by `host:port#sha256=…`; undefined without the fingerprint
 * (a protocol 1 listing): a peer never sends its token to a relay it cannot pin.
 */
export function parseRelayEndpoint(text: string): RelayEndpoint | undefined {
  const m = RELAY_FINGERPRINT.exec(text);
  if (m === null) return undefined;
  const at = parseHostPort(m[1]!);
  return at === undefined ? undefined : { ...at, fingerprint: m[2]! };
}

/** `relay://host:port#sha256=…` for a relay at that address. */
export function formatRelayAddress(relay: RelayEndpoint): string {
  return `${RELAY_ADDRESS_PREFIX}${formatRelayEndpoint(relay)}`;
}

/** The relay named by a `relay://host:port#sha256=…` address; undefined for any other address. */
export function parseRelayAddress(address: string): RelayEndpoint | undefined {
  if (!address.startsWith(RELAY_ADDRESS_PREFIX)) return undefined;
  return parseRelayEndpoint(address.slice(RELAY_ADDRESS_PREFIX.length));
}
