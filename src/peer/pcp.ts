import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { isIPv4 } from 'node:net';

/**
 * The Port Control Protocol's MAP request (RFC 6887), the successor of NAT-PMP on the same UDP
 * port: the only part of port mapping written here, because no maintained npm library speaks it
 * (@achingbrain/nat-port-mapper has UPnP and NAT-PMP). One socket per gateway, one request in
 * flight at a time (a mapping is made, renewed at half its life, and deleted), each request
 * sent again after `retryMs` until `timeoutMs`. An RFC 6886 (NAT-PMP only) server answers a
 * version-2 request with version 0 and "unsupported version": that is `PCP_UNSUPPORTED_VERSION`,
 * and the caller asks by NAT-PMP instead.
 */

export const PCP_SERVER_PORT = 5351;
const VERSION = 2;
const OPCODE_MAP = 1;
const RESPONSE_BIT = 0x80;
/** Common header (24 bytes) + MAP payload (36 bytes), both ways. */
export const MAP_BYTES = 60;
const NONCE_BYTES = 12;
const PROTOCOLS = { tcp: 6, udp: 17 } as const;

/** RFC 6887 §7.4's result codes, by name, for logs and errors. */
const RESULTS = [
  'SUCCESS',
  'UNSUPP_VERSION',
  'NOT_AUTHORIZED',
  'MALFORMED_REQUEST',
  'UNSUPP_OPCODE',
  'UNSUPP_OPTION',
  'MALFORMED_OPTION',
  'NETWORK_FAILURE',
  'NO_RESOURCES',
  'UNSUPP_PROTOCOL',
  'USER_EX_QUOTA',
  'CANNOT_PROVIDE_EXTERNAL',
  'ADDRESS_MISMATCH',
  'EXCESSIVE_REMOTE_PEERS',
] as const;

export type PcpErrorCode = 'PCP_NO_ANSWER' | 'PCP_UNSUPPORTED_VERSION' | 'PCP_REFUSED';

export class PcpError extends Error {
  constructor(
    readonly code: PcpErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'PcpError';
  }
}

export interface MapRequest {
  protocol: keyof typeof PROTOCOLS;
  /** This host's address as the gateway sees it (the server checks it against the packet's source). */
  client: string;
  internalPort: number;
  /** Suggested; the server may give another. */
  externalPort: number;
  /** Seconds; 0 deletes the mapping. */
  lifetimeSec: number;
  /** The same for a mapping's whole life: the server matches renewals and the delete by it. */
  nonce: Buffer;
}

export interface MapResponse {
  version: number;
  result: number;
  lifetimeSec: number;
  /** The server's epoch, seconds (a drop means it restarted and lost its mappings). */
  epochSec: number;
  nonce: Buffer;
  protocol: number;
  internalPort: number;
  externalPort: number;
  /** IPv4 dotted, or undefined when the address is not IPv4-mapped. */
  externalAddress: string | undefined;
}

/** An IPv4 address as PCP carries it: IPv4-mapped IPv6 (::ffff:a.b.c.d). */
function writeMappedIPv4(buf: Buffer, offset: number, ip: string): void {
  buf.fill(0, offset, offset + 10);
  buf.writeUInt16BE(0xffff, offset + 10);
  const parts = ip.split('.').map(Number);
  for (let i = 0; i < 4; i++) buf[offset + 12 + i] = parts[i]!;
}

function readMappedIPv4(buf: Buffer, offset: number): string | undefined {
  for (let i = 0; i < 10; i++) if (buf[offset + i] !== 0) return undefined;
  if (buf.readUInt16BE(offset + 10) !== 0xffff) return undefined;
  return Array.from(buf.subarray(offset + 12, offset + 16)).join('.');
}

export function encodeMapRequest(r: MapRequest): Buffer {
  if (!isIPv4(r.client)) throw new TypeError(`PCP client address ${r.client} is not IPv4`);
  if (r.nonce.length !== NONCE_BYTES) throw new TypeError('PCP nonce must be 12 bytes');
  const buf = Buffer.alloc(MAP_BYTES);
  buf[0] = VERSION;
  buf[1] = OPCODE_MAP;
  buf.writeUInt32BE(r.lifetimeSec, 4);
  writeMappedIPv4(buf, 8, r.client);
  r.nonce.copy(buf, 24);
  buf[36] = PROTOCOLS[r.protocol];
  buf.writeUInt16BE(r.internalPort, 40);
  buf.writeUInt16BE(r.externalPort, 42);
  // Suggested external address: ::ffff:0.0.0.0, "any" (RFC 6887 §11.1).
  writeMappedIPv4(buf, 44, '0.0.0.0');
  return buf;
}

/**
 * A datagram from the server port, if it answers a MAP request: undefined for anything else
 * (a short or foreign packet is ignored, as a lost answer would be). A NAT-PMP server's
 * "unsupported version" answer (version 0, 8 bytes or more) comes back with only version and result.
 */
export function decodeMapResponse(buf: Buffer): MapResponse | undefined {
  if (buf.length >= 4 && buf[0] === 0 && buf[1]! >= RESPONSE_BIT) {
    return {
      version: 0,
      result: buf.readUInt16BE(2),
      lifetimeSec: 0,
      epochSec: 0,
      nonce: Buffer.alloc(0),
      protocol: 0,
      internalPort: 0,
      externalPort: 0,
      externalAddress: undefined,
    };
  }
  if (buf.length < MAP_BYTES || buf.length > 1100 || buf[0] !== VERSION) return undefined;
  if (buf[1] !== (RESPONSE_BIT | OPCODE_MAP)) return undefined;
  return {
    version: VERSION,
    result: buf[3]!,
    lifetimeSec: buf.readUInt32BE(4),
    epochSec: buf.readUInt32BE(8),
    nonce: Buffer.from(buf.subarray(24, 36)),
    protocol: buf[36]!,
    internalPort: buf.readUInt16BE(40),
    externalPort: buf.readUInt16BE(42),
    externalAddress: readMappedIPv4(buf, 44),
  };
}

export function resultName(code: number): string {
  return RESULTS[code] ?? `result ${code}`;
}

export interface PcpMapping {
  externalHost: string;
  externalPort: number;
  /** Granted by the server; may be shorter or longer than asked. */
  lifetimeSec: number;
}

export interface PcpGateway {
  readonly host: string;
  /** Maps (or renews) `internalPort` on `client` for `lifetimeSec`. */
  map(o: {
    client: string;
    internalPort: number;
    lifetimeSec: number;
    timeoutMs: number;
  }): Promise<PcpMapping>;
  /** Deletes the mapping made by `map` (lifetime 0, the same nonce). */
  unmap(o: { client: string; internalPort: number; timeoutMs: number }): Promise<void>;
  stop(): void;
}

export interface PcpGatewayOptions {
  port?: number;
  /** Sent again this often while unanswered (a datagram lost on the LAN). */
  retryMs?: number;
}

export function createPcpGateway(host: string, o: PcpGatewayOptions = {}): PcpGateway {
  const port = o.port ?? PCP_SERVER_PORT;
  const nonce = randomBytes(NONCE_BYTES);
  let socket: Socket | undefined;
  let pending: ((r: MapResponse) => void) | undefined;
  let lastExternalPort = 0;

  const open = (): Socket => {
    if (socket !== undefined) return socket;
    const s = createSocket('udp4');
    // A port unreachable from a router without PCP arrives as an error on a connected socket;
    // unanswered is what the request reports.
    s.on('error', () => {});
    s.on('message', (msg, from) => {
      if (from.address !== host || from.port !== port) return;
      const r = decodeMapResponse(msg);
      if (r === undefined) return;
      if (r.version === VERSION && !r.nonce.equals(nonce)) return;
      pending?.(r);
    });
    s.unref();
    socket = s;
    return s;
  };

  const ask = (request: Buffer, timeoutMs: number): Promise<MapResponse> =>
    new Promise((resolve, reject) => {
      const s = open();
      let resend: NodeJS.Timeout | undefined;
      const finish = () => {
        clearTimeout(deadline);
        clearInterval(resend);
        pending = undefined;
      };
      const send = () => s.send(request, port, host, () => {});
      const deadline = setTimeout(
        // The verdict waits one I/O round: a loop busy past the deadline would miss an answer
        // already waiting unread (port-mapping.ts's answeredWithin says the same).
        () =>
          setImmediate(() => {
            if (pending !== onAnswer) return;
            finish();
            reject(new PcpError('PCP_NO_ANSWER', `no PCP answer from ${host} within ${timeoutMs} ms`));
          }),
        timeoutMs,
      );
      const onAnswer = (r: MapResponse) => {
        finish();
        resolve(r);
      };
      pending = onAnswer;
      resend = setInterval(send, o.retryMs ?? 250);
      send();
    });

  const request = async (client: string, internalPort: number, lifetimeSec: number, timeoutMs: number) => {
    const r = await ask(
      encodeMapRequest({
        protocol: 'tcp',
        client,
        internalPort,
        externalPort: lastExternalPort || internalPort,
        lifetimeSec,
        nonce,
      }),
      timeoutMs,
    );
    if (r.version !== VERSION)
      throw new PcpError('PCP_UNSUPPORTED_VERSION', `${host} speaks NAT-PMP, not PCP (version ${r.version})`);
    if (r.result !== 0)
      throw new PcpError('PCP_REFUSED', `${host} refused the mapping: ${resultName(r.result)}`);
    return r;
  };

  return {
    host,
    async map({ client, internalPort, lifetimeSec, timeoutMs }) {
      const r = await request(client, internalPort, lifetimeSec, timeoutMs);
      if (r.internalPort !== internalPort || r.protocol !== PROTOCOLS.tcp)
        throw new PcpError('PCP_REFUSED', `${host} answered for another mapping`);
      if (r.externalAddress === undefined || r.externalAddress === '0.0.0.0' || r.externalPort === 0)
        throw new PcpError('PCP_REFUSED', `${host} gave no IPv4 external address`);
      lastExternalPort = r.externalPort;
      return { externalHost: r.externalAddress, externalPort: r.externalPort, lifetimeSec: r.lifetimeSec };
    },
    async unmap({ client, internalPort, timeoutMs }) {
      await request(client, internalPort, 0, timeoutMs);
    },
    stop() {
      socket?.close();
      socket = undefined;
    },
  };
}
