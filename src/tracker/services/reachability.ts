/**
 * Reachability (issue 19): on `hello` (and when a peer's addresses change)
 * the tracker dials the peer back at the addresses it advertises, and at the
 * source address the tracker sees with each advertised port, and says whether
 * one answered: `direct` with the address that worked, or `nat`.
 *
 * "Answered" means a TLS handshake whose certificate is the peer id of the
 * session (behind a NAT, 10.0.0.2 may well be someone else's machine). The
 * tracker sends no certificate, so the peer's piece server drops the
 * connection right after: nothing is served. It dials IP literals only (no
 * name lookups on a peer's behalf), and loopback only for a peer that is on
 * this machine itself, so a peer cannot point the tracker at the tracker's own
 * loopback services.
 */
import net from 'node:net';
import tls from 'node:tls';
import { peerIdOfCertificate } from '../../core/peer-id.js';
import { formatHostPort, parseHostPort } from '../../protocol/addresses.js';
import type { Reachability } from '../../protocol/session.js';

export const REACHABILITY_DEFAULTS = Object.freeze({
  /** A peer that answers at all does within a LAN's or the internet's round trips; a silent NAT costs this. */
  timeoutMs: 2_000,
  /**
   * Once TCP connected, the time the TLS handshake may take: the peer is there, and a busy machine
   * (a peer starting, a loaded host) must not make it look unreachable.
   */
  handshakeTimeoutMs: 10_000,
  /** Addresses dialled per check, at once. */
  maxCandidates: 8,
});

/** The addresses worth dialling back for a peer seen from `source`, advertised ones first. */
export function dialBackCandidates(advertised: readonly string[], source: string | undefined): string[] {
  const src = source === undefined ? undefined : unmapped(source);
  const local = src !== undefined && isLoopback(src);
  const out: string[] = [];
  const add = (host: string, port: number) => {
    if (net.isIP(host) === 0 || isUnspecified(host)) return;
    if (isLoopback(host) && !local) return;
    const a = formatHostPort(host, port);
    if (!out.includes(a)) out.push(a);
  };
  const parsed = advertised.map(parseHostPort).filter((a) => a !== undefined);
  for (const a of parsed) add(a.host, a.port);
  if (src !== undefined) for (const a of parsed) add(src, a.port);
  return out.slice(0, REACHABILITY_DEFAULTS.maxCandidates);
}

/** Dials every candidate at once; the first that proves `peerId` makes the peer `direct`. */
export async function checkReachability(
  peerId: string,
  candidates: readonly string[],
  timeoutMs: number = REACHABILITY_DEFAULTS.timeoutMs,
): Promise<Reachability> {
  if (candidates.length === 0) return { reachable: 'nat' };
  try {
    const address = await Promise.any(candidates.map((c) => proves(c, peerId, timeoutMs)));
    return { reachable: 'direct', address };
  } catch {
    return { reachable: 'nat' };
  }
}

function proves(address: string, peerId: string, timeoutMs: number): Promise<string> {
  const hp = parseHostPort(address)!;
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: hp.host,
      port: hp.port,
      minVersion: 'TLSv1.3',
      rejectUnauthorized: false,
    });
    let timer = setTimeout(() => done(new Error('timeout')), timeoutMs);
    timer.unref();
    socket.once('connect', () => {
      clearTimeout(timer);
      timer = setTimeout(() => done(new Error('no TLS handshake')), REACHABILITY_DEFAULTS.handshakeTimeoutMs);
      timer.unref();
    });
    const done = (err?: Error) => {
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(address);
    };
    socket.once('error', done);
    socket.once('secureConnect', () => {
      const cert = socket.getPeerX509Certificate();
      done(
        cert !== undefined && peerIdOfCertificate(cert) === peerId ? undefined : new Error('another peer'),
      );
    });
  });
}

function unmapped(ip: string): string {
  return ip.startsWith('::ffff:') && net.isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
}

function isLoopback(ip: string): boolean {
  return ip === '::1' || ip.startsWith('127.') || ip === 'localhost';
}

function isUnspecified(ip: string): boolean {
  return ip === '0.0.0.0' || ip === '::';
}
