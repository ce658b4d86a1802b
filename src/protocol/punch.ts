/**
 * The datagrams a peer's UDP endpoint speaks beside its UDX streams (issue 19,
 * hole punching). UDX's own packets start with byte 0xff; ours start with the
 * four bytes `CTP1`, then one JSON object, so the two never mix on a socket.
 *
 * - `reflect` → `reflected`: "which address did my datagram come from?" (a
 *   tracker answers: the peer's public UDP endpoint behind its NAT).
 * - `probe`: sent to the other side's endpoint while punching, so our NAT
 *   lets its datagrams in; its source tells the other side where we really
 *   are (a NAT may give a new port per destination).
 * - `open` → `accept`: the dialler's stream id and the acceptor's, then both
 *   connect their UDX streams and TLS runs over them. `open` doubles as the
 *   dialler's probe.
 *
 * Every datagram carries a nonce `n` the asker chose: answers name it.
 */
import { formatHostPort, type HostPort, parseHostPort } from './addresses.js';

export const PUNCH_MAGIC = Buffer.from('CTP1');
/** Larger datagrams are ignored: ours are a few dozen bytes. */
export const MAX_PUNCH_DATAGRAM_BYTES = 512;
/** A peer's public UDP endpoint as it announces it beside its TCP address. */
export const UDP_ADDRESS_PREFIX = 'udp://';

export type PunchDatagram =
  | { t: 'reflect'; n: string }
  | { t: 'reflected'; n: string; host: string; port: number }
  | { t: 'probe'; n: string }
  | { t: 'open'; n: string; id: number }
  | { t: 'accept'; n: string; id: number };

const NONCE = /^[0-9a-f]{8,64}$/;

export function encodePunchDatagram(d: PunchDatagram): Buffer {
  return Buffer.concat([PUNCH_MAGIC, Buffer.from(JSON.stringify(d))]);
}

/** The datagram in `buf`, or undefined for anything that is not one of ours (or malformed). */
export function decodePunchDatagram(buf: Buffer): PunchDatagram | undefined {
  if (buf.length > MAX_PUNCH_DATAGRAM_BYTES || buf.length <= PUNCH_MAGIC.length) return undefined;
  if (!buf.subarray(0, PUNCH_MAGIC.length).equals(PUNCH_MAGIC)) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(buf.subarray(PUNCH_MAGIC.length).toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const d = v as Record<string, unknown>;
  if (typeof d.n !== 'string' || !NONCE.test(d.n)) return undefined;
  switch (d.t) {
    case 'reflect':
    case 'probe':
      return { t: d.t, n: d.n };
    case 'reflected':
      if (typeof d.host !== 'string' || d.host.length > 64 || !isPort(d.port)) return undefined;
      return { t: 'reflected', n: d.n, host: d.host, port: d.port };
    case 'open':
    case 'accept':
      if (!Number.isInteger(d.id) || (d.id as number) < 1 || (d.id as number) > 0xffffffff) return undefined;
      return { t: d.t, n: d.n, id: d.id as number };
    default:
      return undefined;
  }
}

function isPort(p: unknown): p is number {
  return Number.isInteger(p) && (p as number) > 0 && (p as number) <= 65535;
}

/** `udp://host:port` for a public UDP endpoint. */
export function formatUdpAddress(endpoint: HostPort): string {
  return `${UDP_ADDRESS_PREFIX}${formatHostPort(endpoint.host, endpoint.port)}`;
}

/** The endpoint named by a `udp://host:port` address; undefined for any other address. */
export function parseUdpAddress(address: string): HostPort | undefined {
  if (!address.startsWith(UDP_ADDRESS_PREFIX)) return undefined;
  return parseHostPort(address.slice(UDP_ADDRESS_PREFIX.length));
}
