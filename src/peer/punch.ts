import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { formatHostPort, type HostPort, parseHostPort } from '../protocol/addresses.js';
import { CoterieError } from '../protocol/errors.js';
import { parseRelayEndpoint } from '../protocol/relay.js';
import type { PunchEvent } from '../protocol/session.js';
import {
  type Dial,
  dialOverUdp,
  nonce,
  type PeerIdentity,
  PUNCH_LOW_TTL,
  serveOverUdp,
  UDP_ENDPOINT_DEFAULTS,
  UdpEndpoint,
} from '../wire/index.js';
import type { TrackerSession } from './tracker/session.js';

export interface PunchOptions {
  session: TrackerSession;
  identity: PeerIdentity;
  /** Where to bind the UDP socket (the piece server's host). */
  host: string;
  /** Where streams opened to us go once their TLS is up: the piece server. */
  accept(stream: Duplex, peerId: string): void;
  /** Our public endpoint was learned or changed: announce it again. */
  onPublicChange(): void;
  log: Logger;
  /** How long a punch may take before the dial falls back to a relay. */
  timeoutMs?: number;
  /** How often the public endpoint is asked again (also keeps the NAT's mapping alive). */
  refreshMs?: number;
}

export const PUNCH_DEFAULTS = Object.freeze({ timeoutMs: 3_000, refreshMs: 20_000, maxProbing: 16 });

export interface Punch {
  /** Our public UDP endpoint as a relay's reflector saw it; undefined until one answered. */
  publicEndpoint(): HostPort | undefined;
  /** Punches to a seeder that announced a `udp://` endpoint and opens TLS over the stream. */
  dial: Dial;
  stop(): Promise<void>;
}

/**
 * Issue 19's hole punching on the peer: one UDP endpoint (UDX streams) that
 * serves like the piece server's listener, our public endpoint learned from
 * the relays' reflectors (and kept fresh, which keeps the NAT's mapping),
 * the tracker's `punch` pushes answered with probes, and a dial that asks the
 * tracker to have the seeder probe us while we send `open`s to it.
 */
export async function startPunch(o: PunchOptions): Promise<Punch> {
  const timeoutMs = o.timeoutMs ?? PUNCH_DEFAULTS.timeoutMs;
  const endpoint = await UdpEndpoint.open({
    host: o.host,
    onStream: serveOverUdp(o.identity, o.accept, (err) =>
      o.log.debug({ err: err.message }, 'UDP stream dropped'),
    ),
  });
  let pub: HostPort | undefined;
  /** The cluster's relays: their UDP reflectors tell us our public endpoint. */
  let relays: HostPort[] = [];
  let stopped = false;
  let probing = 0;

  const reflect = async () => {
    for (const relay of relays) {
      if (stopped) return;
      try {
        const host = isIP(relay.host) === 0 ? (await lookup(relay.host)).address : relay.host;
        const seen = await endpoint.reflect({ host, port: relay.port }, { timeoutMs: 1_000 });
        if (
          pub === undefined ||
          formatHostPort(pub.host, pub.port) !== formatHostPort(seen.host, seen.port)
        ) {
          pub = seen;
          o.log.info({ endpoint: formatHostPort(seen.host, seen.port) }, 'public UDP endpoint');
          o.onPublicChange();
        }
        return;
      } catch (err) {
        o.log.debug({ relay, err: (err as Error).message }, 'no UDP reflection');
      }
    }
  };
  const refresh = setInterval(() => void reflect(), o.refreshMs ?? PUNCH_DEFAULTS.refreshMs);
  refresh.unref();
  o.session.on('relays', (list) => {
    // Listed as host:port#sha256=… (the TCP side is pinned); the reflector answers on the same port over UDP.
    relays = list
      .map(parseRelayEndpoint)
      .filter((r) => r !== undefined)
      .map(({ host, port }) => ({ host, port }));
    void reflect();
  });
  o.session.on('connected', () => void reflect());

  // A peer punching to us: datagrams to its endpoint until the punch's time is up, so our NAT lets its `open`s in.
  o.session.on('punch', (e: PunchEvent) => {
    const to = parseHostPort(e.endpoint);
    if (to === undefined || stopped || probing >= PUNCH_DEFAULTS.maxProbing) return;
    probing++;
    const lowUntil = Date.now() + PUNCH_LOW_TTL.ms;
    const probe = () =>
      endpoint.send({ t: 'probe', n: e.n }, to, Date.now() < lowUntil ? PUNCH_LOW_TTL.ttl : undefined);
    const tick = setInterval(probe, UDP_ENDPOINT_DEFAULTS.resendMs);
    probe();
    setTimeout(() => {
      clearInterval(tick);
      probing--;
    }, timeoutMs).unref();
    o.log.debug({ from: e.from.slice(0, 12), endpoint: e.endpoint }, 'punching');
  });

  return {
    publicEndpoint: () => pub,
    async dial(target, signal) {
      const theirs = target.udp;
      const ours = pub;
      if (theirs === undefined || ours === undefined) {
        throw new CoterieError('UNAVAILABLE', 'no UDP endpoint to punch between');
      }
      const n = nonce();
      // A NAT may show the seeder at another port than its reflector saw: its probes say where.
      const seen: HostPort[] = [];
      const unwatch = endpoint.watchProbes(n, (from) => {
        if (!seen.some((s) => s.host === from.host && s.port === from.port)) seen.push(from);
      });
      try {
        await o.session.punch(target.peerId, formatHostPort(ours.host, ours.port), n);
        return await dialOverUdp({
          endpoint,
          candidates: () => [theirs, ...seen],
          identity: o.identity,
          peerId: target.peerId,
          n,
          signal,
          timeoutMs,
          lowTtlFirst: true,
        });
      } finally {
        unwatch();
      }
    },
    async stop() {
      stopped = true;
      clearInterval(refresh);
      await endpoint.close();
    },
  };
}
