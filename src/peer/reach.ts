import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { formatHostPort, type HostPort } from '../protocol/addresses.js';
import type { ReachView } from '../protocol/control.js';
import type { CoterieError } from '../protocol/errors.js';
import { formatUdpAddress } from '../protocol/punch.js';
import { formatRelayAddress, parseRelayEndpoint, type RelayEndpoint } from '../protocol/relay.js';
import type { Reachability } from '../protocol/session.js';
import {
  acceptViaRelay,
  createReachDial,
  type Dial,
  type PeerIdentity,
  RelayReservation,
  type RelayReservationOptions,
} from '../wire/index.js';
import type { PortMapper } from './port-mapping.js';
import type { TrackerSession } from './tracker/session.js';

export interface ReachOptions {
  session: TrackerSession;
  identity: PeerIdentity;
  token(): string | undefined;
  /** Where relayed connections go once their TLS is up: the piece server. */
  accept(stream: Duplex, peerId: string): void;
  /** The peer's own addresses (its piece server). */
  directAddresses(): string[];
  log: Logger;
  /** Wait before trying the relays again when none took the reservation. */
  retryMs?: number;
  /** The home router's port mapping, when one is held: its address is a candidate the dial-back checks. */
  mapping?: Pick<PortMapper, 'address' | 'view'>;
  /** Hole punching (punch.ts); undefined: off (`--no-punch`). */
  punch?: { publicEndpoint(): HostPort | undefined; dial: Dial };
  /** The reservation's keepalive, its clock and a renewal's echo (tests); the defaults otherwise. */
  reservation?: Pick<RelayReservationOptions, 'keepalive' | 'clock' | 'onRenewed'>;
}

/** The peer's reachability as the daemon and `status` see it. */
export interface Reach {
  /** The addresses to announce: the direct one and, while reserved, `relay://` the relay. */
  addresses(): string[];
  /** Wraps the direct dial: seeders behind NAT are reached through their relays. */
  dial(direct: Dial): Dial;
  /** Announces the addresses again if they changed (our public UDP endpoint did). */
  refresh(): void;
  status(): ReachView;
  /** The port mapping came, moved or went: tell the tracker (its dial-back then checks the mapped address). */
  addressesChanged(): void;
  stop(): void;
}

/**
 * Issue 19 on the peer: the tracker's dial-back verdict (welcome, then after
 * each addresses update) decides whether this peer keeps a relay
 * reservation. Behind NAT it reserves on one of the cluster's relays, says
 * so in its addresses (`relay://host:port`) so downloaders know the way, takes
 * the circuits the relay announces (TLS server side, then the piece server,
 * which checks tickets as always), and when the relay goes it reserves on
 * another and tells the tracker.
 */
export function createReach(o: ReachOptions): Reach {
  let reachability: Reachability | undefined;
  let relays: RelayEndpoint[] = [];
  let reservation: RelayReservation | null = null;
  let reserving = false;
  let retry: NodeJS.Timeout | undefined;
  let stopped = false;
  let lastFailed: string | undefined;
  let announced = '';
  /** The address the dial-back proved, when we did not advertise it; kept while we stay direct. */
  let confirmed: string | undefined;
  /** The mapped address as last announced (see addressesChanged). */
  let lastMapped: string | undefined;
  const retryMs = o.retryMs ?? 2_000;

  /** Our own addresses, then the mapped one: advertised last until the dial-back proves it (then first). */
  const own = () => {
    const direct = o.directAddresses();
    const mapped = o.mapping?.address();
    return mapped === undefined || direct.includes(mapped) ? direct : [...direct, mapped];
  };
  /** Our public UDP endpoint, announced only behind NAT (a direct peer is dialled over TCP). */
  const udp = () => {
    const pub = o.punch?.publicEndpoint();
    return pub === undefined || reachability?.reachable !== 'nat' ? [] : [formatUdpAddress(pub)];
  };
  const addresses = () => [
    ...withConfirmed(own(), confirmed),
    ...(reservation === null ? [] : [formatRelayAddress(reservation.relay)]),
    ...udp(),
  ];
  const announce = () => {
    const list = addresses();
    const key = list.join(' ');
    if (key === announced || o.session.state !== 'connected') return;
    announced = key;
    o.session.setAddresses(list).catch((err: unknown) => {
      announced = '';
      o.log.debug({ err: (err as Error).message }, 'addresses update not sent');
    });
  };

  /** The relays in the order to try: a start spread by peer id, the one that just failed last. */
  const candidates = (): RelayEndpoint[] => {
    if (relays.length === 0) return [];
    const start = Number.parseInt(o.identity.peerId.slice(0, 8), 16) % relays.length;
    const ring = [...relays.slice(start), ...relays.slice(0, start)];
    return [
      ...ring.filter((r) => formatHostPort(r.host, r.port) !== lastFailed),
      ...ring.filter((r) => formatHostPort(r.host, r.port) === lastFailed),
    ];
  };

  const onIncoming = (relay: RelayEndpoint) => (circuit: string, from: string) => {
    const token = o.token();
    if (token === undefined) return;
    acceptViaRelay({ relay, circuit, identity: o.identity, token }).then(
      ({ stream, peerId }) => {
        o.log.debug(
          { from: from.slice(0, 12), relay: formatHostPort(relay.host, relay.port) },
          'relayed circuit',
        );
        // A circuit that breaks may mean the NAT in front of us forgot its mappings: check the reservation.
        stream.once('error', () => reservation?.check());
        o.accept(stream, peerId);
      },
      (err: unknown) => o.log.debug({ err: (err as Error).message }, 'relayed circuit not taken'),
    );
  };

  const reserve = async () => {
    if (stopped || reserving || reservation !== null || reachability?.reachable !== 'nat') return;
    reserving = true;
    try {
      for (const relay of candidates()) {
        try {
          const r = await RelayReservation.open({
            relay,
            peerId: o.identity.peerId,
            token: o.token,
            onIncoming: onIncoming(relay),
            ...o.reservation,
            onClosed: (err: CoterieError) => {
              if (reservation !== r) return;
              reservation = null;
              lastFailed = formatHostPort(relay.host, relay.port);
              o.log.warn({ relay: lastFailed, reason: err.message }, 'relay reservation lost');
              announce();
              void reserve();
            },
          });
          if (stopped || reachability?.reachable !== 'nat') {
            r.close();
            return;
          }
          reservation = r;
          o.log.info({ relay: formatHostPort(relay.host, relay.port) }, 'relay reservation held');
          announce();
          return;
        } catch (err) {
          o.log.debug({ relay, err: (err as Error).message }, 'relay refused the reservation');
        }
      }
      if (retry === undefined && !stopped) {
        retry = setTimeout(() => {
          retry = undefined;
          void reserve();
        }, retryMs);
        retry.unref();
      }
    } finally {
      reserving = false;
    }
  };

  o.session.on('relays', (list) => {
    // A relay listed without its certificate's fingerprint (a protocol 1 tracker) is never sent a token.
    relays = list.map(parseRelayEndpoint).filter((r) => r !== undefined);
    void reserve();
  });
  o.session.on('reachability', (r) => {
    reachability = r;
    if (r.reachable !== 'direct') confirmed = undefined;
    else if (r.address !== undefined && !o.directAddresses().includes(r.address)) confirmed = r.address;
    o.log.info({ reachable: r.reachable, address: r.address }, 'reachability');
    if (r.reachable === 'direct' && reservation !== null) {
      reservation.close();
      reservation = null;
    }
    // A dial-back that worked at an address we did not advertise (the router's, behind a NAT that
    // forwards): downloaders take a seeder's first address, so that one goes first.
    announce();
    void reserve();
  });
  // A new session registered the addresses of the moment in its hello.
  o.session.on('connected', () => {
    announced = addresses().join(' ');
  });

  return {
    addresses,
    dial: (direct) =>
      createReachDial({
        identity: o.identity,
        direct,
        token: o.token,
        knownRelays: () => relays,
        ...(o.punch === undefined ? {} : { punch: o.punch.dial }),
      }),
    refresh: announce,
    status: () => {
      const pub = o.punch?.publicEndpoint();
      const mapping = o.mapping?.view();
      return {
        reachable: reachability?.reachable ?? 'unknown',
        ...(reachability?.address === undefined ? {} : { address: reachability.address }),
        ...(reservation === null
          ? {}
          : { relay: formatHostPort(reservation.relay.host, reservation.relay.port) }),
        relays: relays.map((r) => formatHostPort(r.host, r.port)),
        ...(mapping === undefined ? {} : { mapping }),
        ...(pub === undefined ? {} : { udp: formatHostPort(pub.host, pub.port) }),
      };
    },
    addressesChanged: () => {
      // A mapping proven and since lost or moved: its old address is void until the tracker checks again.
      const now = o.mapping?.address();
      if (confirmed !== undefined && confirmed === lastMapped && confirmed !== now) confirmed = undefined;
      lastMapped = now;
      announce();
    },
    stop() {
      stopped = true;
      if (retry) clearTimeout(retry);
      reservation?.close();
      reservation = null;
    },
  };
}

/**
 * The peer's own addresses with the one the tracker's dial-back proved first
 * (a router's public address that forwards to us, or a port mapping):
 * downloaders dial a seeder's first address. A later check that answers at
 * one of our own addresses leaves it in place, so two answers do not take
 * turns.
 */
export function withConfirmed(own: string[], confirmed: string | undefined): string[] {
  return confirmed === undefined ? own : [confirmed, ...own.filter((a) => a !== confirmed)];
}
