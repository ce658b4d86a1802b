import { setTimeout as sleep } from 'node:timers/promises';
import { CoterieError, isCoterieError } from '../protocol/errors.js';
import { formatRelayEndpoint, type RelayEndpoint } from '../protocol/relay.js';
import type { Dial, DialedPeer } from './dial.js';
import type { PeerIdentity } from './identity.js';
import { dialViaRelay } from './relay-client.js';

export interface ReachDialOptions {
  identity: PeerIdentity;
  /** The dial tried first (TLS over TCP). */
  direct: Dial;
  /** The session token relays check; undefined (logged out): relays are not tried. */
  token(): string | undefined;
  /** The cluster's relays, tried after the seeder's own (it may have moved since it was listed). */
  knownRelays(): RelayEndpoint[];
  /**
   * Hole punching (peer/punch.ts) to a seeder that announced a UDP endpoint:
   * tried after the direct head start, before the relays, and given up
   * within its own bound so the relays stay the fallback.
   */
  punch?: Dial;
  timeoutMs?: number;
  /**
   * How long the direct dial runs alone before the relays are tried too (a
   * direct failure starts them at once): long enough for a LAN or a public
   * address to answer, short enough that a NAT that drops the SYN costs little.
   */
  directHeadStartMs?: number;
}

export const REACH_DIAL_DEFAULTS = Object.freeze({ timeoutMs: 10_000, directHeadStartMs: 500 });

/**
 * A Dial that reaches seeders behind NAT (issue 19). A seeder listed with
 * relays (`relay://` addresses: the tracker could not dial it back) or a UDP
 * endpoint (`udp://`) is tried directly and, after a head start or at once
 * when that fails, by punching a hole over UDP, then through its relays and
 * the cluster's others, one after another; the first stream
 * to prove the seeder's peer id wins and the other is closed. A seeder
 * listed without relays is dialled directly only. A stream through a relay
 * says so (`relayed`); a target marked `directOnly` (the download upgrading
 * that link) gets direct and punched attempts at once and no relay.
 */
export function createReachDial(options: ReachDialOptions): Dial {
  const timeoutMs = options.timeoutMs ?? REACH_DIAL_DEFAULTS.timeoutMs;
  const headStartMs = options.directHeadStartMs ?? REACH_DIAL_DEFAULTS.directHeadStartMs;
  return async (target, signal, reads) => {
    const token = options.token();
    const own = target.relays ?? [];
    const punch = target.udp === undefined ? undefined : options.punch;
    if ((own.length === 0 && punch === undefined) || token === undefined) {
      return options.direct(target, signal, reads);
    }
    // An upgrade needs no head start: the relayed link carries the download meanwhile.
    const relays = target.directOnly === true ? [] : unique([...own, ...options.knownRelays()]);
    const headStart = target.directOnly === true ? 0 : headStartMs;
    const stop = new AbortController();
    const both = AbortSignal.any([signal, stop.signal]);
    const errors: CoterieError[] = [];
    let directFailed!: () => void;
    const directGone = new Promise<void>((r) => {
      directFailed = r;
    });
    // No placed reads here: only the winner's socket may own the connection's buffers.
    const direct = options.direct(target, both).catch((err: unknown) => {
      errors.push(asError(err));
      directFailed();
      throw err;
    });
    const relayed = (async (): Promise<DialedPeer> => {
      await Promise.race([directGone, sleep(headStart, undefined, { signal: both }).catch(() => {})]);
      if (punch !== undefined) {
        both.throwIfAborted();
        try {
          return { ...(await punch(target, both)), punched: true };
        } catch (err) {
          errors.push(asError(err));
        }
      }
      for (const relay of relays) {
        both.throwIfAborted();
        try {
          const circuit = await dialViaRelay({
            relay,
            target: target.peerId,
            identity: options.identity,
            token,
            signal: both,
            timeoutMs,
          });
          return { ...circuit, relayed: true };
        } catch (err) {
          errors.push(asError(err));
        }
      }
      throw new CoterieError(
        'UNAVAILABLE',
        relays.length === 0 ? 'no direct path' : 'no relay reached the seeder',
      );
    })();
    try {
      const winner = await Promise.any([direct, relayed]);
      for (const p of [direct, relayed]) {
        void p.then(
          (d) => d !== winner && d.stream.destroy(),
          () => {},
        );
      }
      return winner;
    } catch {
      signal.throwIfAborted();
      // The most telling reason: a relay's refusal (busy, forbidden) or a mismatch over a plain "unreachable".
      throw (
        errors.find((e) => e.code !== 'UNAVAILABLE') ??
        errors.at(-1) ??
        new CoterieError('UNAVAILABLE', 'unreachable')
      );
    } finally {
      stop.abort();
    }
  };
}

function unique(relays: RelayEndpoint[]): RelayEndpoint[] {
  const seen = new Set<string>();
  return relays.filter((r) => {
    const key = formatRelayEndpoint(r);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function asError(err: unknown): CoterieError {
  return isCoterieError(err) ? err : new CoterieError('UNAVAILABLE', (err as Error).message, { cause: err });
}
