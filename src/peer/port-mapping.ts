import { createSocket } from 'node:dgram';
import type { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import type { Gateway } from '@achingbrain/nat-port-mapper';
import type { Logger } from 'pino';
import { fetch as undiciFetch } from 'undici';
import { formatHostPort } from '../protocol/addresses.js';
import type { PortMappingView } from '../protocol/control.js';
import { PEER_DEFAULTS } from './config.js';
import { createPcpGateway, PcpError } from './pcp.js';

/**
 * Issue 19, part 3: asks the home router to forward the piece server's port
 * (PCP first, then NAT-PMP, each one UDP round trip to the default gateway;
 * then UPnP IGD, found by SSDP), renews the lease at half its life and removes
 * the mapping at shutdown. NAT-PMP and UPnP are @achingbrain/nat-port-mapper's
 * (libp2p's), loaded only when a peer maps, with its own refresh off so that
 * renewals are ours to log and to show; PCP is ours (pcp.ts), as no library
 * has it. The mapped address is only a
 * candidate: reach.ts advertises it, and puts it first once the tracker's
 * dial-back proved it.
 */

export const PORT_MAPPING_DEFAULTS = Object.freeze({
  /**
   * A NAT-PMP gateway answers within a round trip on the LAN (RFC 6886 retries after 250 ms); a
   * UPnP-only router's peer waits this long before its mapping (the SSDP search runs meanwhile).
   */
  pmpTimeoutMs: 500,
  /** SSDP: the search and the device description. */
  upnpTimeoutMs: 3_000,
  /** Removing the mapping at shutdown must not hold the stop for long. */
  unmapTimeoutMs: 2_000,
  /** A renewal that failed is tried again this soon (while the lease lasts). */
  retryMs: 5_000,
});

export type PortMappingFailure = 'no-gateway' | 'refused';

/** Why no mapping was made; logged, never fatal: the peer then relies on the dial-back and relays. */
export class PortMappingError extends Error {
  constructor(
    readonly reason: PortMappingFailure,
    message: string,
  ) {
    super(message);
    this.name = 'PortMappingError';
  }
}

export interface PortMapperOptions {
  /** The piece server's port, mapped to the same external port where the router allows. */
  port: number;
  log: Logger;
  /** Asked for; UPnP leases are at least an hour (the library's floor). */
  leaseSec?: number;
  /** The gateway to ask (default: the IPv4 default route's). */
  gateway?: string;
  /** A mapping came, was renewed at another address, or went. */
  onChange(): void;
}

export interface PortMapper {
  /** Tries the protocols once; resolves either way (a failure is logged). */
  start(): Promise<void>;
  /** `host:port` others may dial, while a mapping is held. */
  address(): string | undefined;
  view(): PortMappingView | undefined;
  /** Removes the mapping (bounded by unmapTimeoutMs). */
  stop(): Promise<void>;
}

/** One router and one protocol, seen the same way whoever speaks it (our PCP, the library's others). */
interface MappingGateway {
  protocol: PortMappingView['protocol'];
  host: string;
  /** Makes or renews the mapping of `internal`; the lease the router granted, in seconds. */
  map(internal: string, leaseSec: number, timeoutMs: number): Promise<{ external: string; granted: number }>;
  /** Removes it and lets the gateway go. */
  release(internal: string, signal: AbortSignal): Promise<void>;
  /** Lets the gateway go (its socket, its search) without removing anything. */
  stop(): Promise<void>;
}

interface Held {
  gateway: MappingGateway;
  internal: string;
  external: string;
  leaseSec: number;
  expiresAt: number;
  renewals: number;
}

const hostOf = (hostPort: string) => hostPort.slice(0, hostPort.lastIndexOf(':'));

/** Our PCP client as a MappingGateway. */
function pcpGateway(router: string, port: number): MappingGateway {
  const pcp = createPcpGateway(router);
  return {
    protocol: 'pcp',
    host: router,
    async map(internal, leaseSec, timeoutMs) {
      const m = await pcp.map({
        client: hostOf(internal),
        internalPort: port,
        lifetimeSec: leaseSec,
        timeoutMs,
      });
      return { external: formatHostPort(m.externalHost, m.externalPort), granted: m.lifetimeSec };
    },
    async release(internal) {
      try {
        await pcp.unmap({
          client: hostOf(internal),
          internalPort: port,
          timeoutMs: PORT_MAPPING_DEFAULTS.unmapTimeoutMs,
        });
      } finally {
        pcp.stop();
      }
    },
    async stop() {
      pcp.stop();
    },
  };
}

/** A NAT-PMP or UPnP gateway of @achingbrain/nat-port-mapper as a MappingGateway. */
function libraryGateway(protocol: 'natpmp' | 'upnp', gateway: Gateway, port: number): MappingGateway {
  return {
    protocol,
    host: gateway.host,
    async map(internal, leaseSec, timeoutMs) {
      const m = await answeredWithin(
        gateway.map(port, hostOf(internal), {
          protocol: 'tcp',
          description: `coterie peer ${port}`,
          // The library takes the TTL in seconds for NAT-PMP, in ms for UPnP.
          ttl: protocol === 'natpmp' ? leaseSec : leaseSec * 1000,
          autoRefresh: false,
        }),
        timeoutMs,
      );
      // The UPnP library asks for an hour at least.
      const granted = protocol === 'upnp' ? Math.max(leaseSec, 3_600) : leaseSec;
      return { external: formatHostPort(m.externalHost, m.externalPort), granted };
    },
    async release(_internal, signal) {
      // NAT-PMP removes with a zero lifetime; the UPnP gateway's stop deletes what it mapped.
      if (protocol === 'natpmp') await gateway.unmap(port, { signal });
      await gateway.stop({ signal });
    },
    stop: () => gateway.stop(),
  };
}

export function createPortMapper(o: PortMapperOptions): PortMapper {
  const leaseSec = o.leaseSec ?? PEER_DEFAULTS.portMappingLeaseSec;
  let held: Held | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const schedule = (ms: number) => {
    if (stopped) return;
    timer = setTimeout(() => void renew(), ms);
    timer.unref();
  };

  const renew = async () => {
    const h = held;
    if (h === undefined || stopped) return;
    const protocol = h.gateway.protocol;
    try {
      const { external, granted } = await h.gateway.map(
        h.internal,
        leaseSec,
        PORT_MAPPING_DEFAULTS.upnpTimeoutMs,
      );
      if (stopped) return;
      const moved = external !== h.external;
      Object.assign(h, { external, leaseSec: granted, expiresAt: Date.now() + granted * 1000 });
      h.renewals++;
      o.log.info({ protocol, external, lease: granted, renewals: h.renewals }, 'port mapping renewed');
      if (moved) o.onChange();
      schedule((granted * 1000) / 2);
    } catch (err) {
      if (Date.now() >= h.expiresAt) {
        held = undefined;
        o.log.warn({ protocol, err: describe(err) }, 'port mapping lost');
        o.onChange();
        return;
      }
      o.log.warn({ protocol, err: describe(err) }, 'port mapping not renewed yet');
      schedule(Math.min(PORT_MAPPING_DEFAULTS.retryMs, Math.max(0, h.expiresAt - Date.now()) / 2));
    }
  };

  const tryGateway = async (find: () => Promise<MappingGateway>, timeoutMs: number): Promise<Held> => {
    const gateway = await find();
    const internal = formatHostPort(await localAddressToward(gateway.host), o.port);
    try {
      const { external, granted } = await gateway.map(internal, leaseSec, timeoutMs);
      return {
        gateway,
        internal,
        external,
        leaseSec: granted,
        expiresAt: Date.now() + granted * 1000,
        renewals: 0,
      };
    } catch (err) {
      await gateway.stop().catch(() => {});
      // PCP's codes say whether NAT-PMP is worth asking; the rest is a refusal.
      if (err instanceof PcpError && err.code !== 'PCP_REFUSED') throw err;
      throw new PortMappingError('refused', describe(err));
    }
  };

  return {
    async start() {
      const started = Date.now();
      const lib = await loadPortMappingLibrary();
      const loadedMs = Date.now() - started;
      const router = o.gateway ?? defaultGateway();
      // The SSDP search runs while PCP / NAT-PMP are asked: a UPnP-only router costs no extra wait.
      const upnp = findUpnpGateway(lib).then((g) => libraryGateway('upnp', g, o.port));
      upnp.catch(() => {});
      const needRouter = () => {
        if (router === undefined) throw new PortMappingError('no-gateway', 'no IPv4 default route');
        return router;
      };
      const attempts: Array<[Held['gateway']['protocol'], () => Promise<MappingGateway>, number]> = [
        ['pcp', async () => pcpGateway(needRouter(), o.port), PORT_MAPPING_DEFAULTS.pmpTimeoutMs],
        [
          'natpmp',
          async () => {
            const gateway = lib.pmpNat(needRouter(), { autoRefresh: false });
            // Its UDP socket's errors are emitted, and an 'error' nobody listens to ends the process.
            (gateway as unknown as EventEmitter).on('error', (err: Error) =>
              o.log.debug({ err: err.message }, 'NAT-PMP socket error'),
            );
            return libraryGateway('natpmp', gateway, o.port);
          },
          PORT_MAPPING_DEFAULTS.pmpTimeoutMs,
        ],
        ['upnp', () => upnp, PORT_MAPPING_DEFAULTS.upnpTimeoutMs],
      ];
      const failures: string[] = [];
      for (let i = 0; i < attempts.length; i++) {
        const [protocol, find, timeoutMs] = attempts[i]!;
        if (stopped) return;
        try {
          held = await tryGateway(find, timeoutMs);
        } catch (err) {
          failures.push(`${protocol}: ${describe(err)}`);
          // NAT-PMP shares PCP's port, and RFC 6886 §3.5 has a NAT-PMP server answer a PCP request
          // ("unsupported version"): a router silent to PCP has neither, so NAT-PMP is not asked.
          if (err instanceof PcpError && err.code === 'PCP_NO_ANSWER') i++;
          continue;
        }
        if (protocol !== 'upnp')
          upnp.then(
            (g) => g.stop(),
            () => {},
          );
        if (stopped) {
          await this.stop();
          return;
        }
        o.log.info(
          {
            protocol,
            external: held.external,
            internal: held.internal,
            lease: held.leaseSec,
            ms: Date.now() - started,
            loadedMs,
          },
          'port mapping made',
        );
        schedule((held.leaseSec * 1000) / 2);
        o.onChange();
        return;
      }
      o.log.info({ failures }, 'no port mapping (no PCP, NAT-PMP or UPnP gateway answered)');
    },
    address: () => held?.external,
    view: () =>
      held === undefined
        ? undefined
        : {
            protocol: held.gateway.protocol,
            external: held.external,
            internal: held.internal,
            leaseSec: held.leaseSec,
            expiresAt: held.expiresAt,
            renewals: held.renewals,
          },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      const h = held;
      held = undefined;
      if (h === undefined) return;
      const protocol = h.gateway.protocol;
      try {
        await h.gateway.release(h.internal, AbortSignal.timeout(PORT_MAPPING_DEFAULTS.unmapTimeoutMs));
        o.log.info({ protocol, external: h.external }, 'port mapping removed');
      } catch (err) {
        o.log.warn(
          { protocol, external: h.external, err: (err as Error).message },
          'port mapping not removed (it ends with its lease)',
        );
      }
    },
  };
}

/**
 * `answer`, unless it has not come `ms` after: then a timeout. Not an AbortSignal timer: Node runs
 * due timers before it reads sockets, so a loop busy past `ms` (a loaded machine, modules loading)
 * would time out a router's answer already waiting unread; the verdict waits for one I/O round.
 */
function answeredWithin<T>(answer: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => setImmediate(() => reject(new Error(`no answer within ${ms} ms`))), ms);
  });
  return Promise.race([answer, late]).finally(() => clearTimeout(timer));
}

/** An error's message with its cause's (fetch's "fetch failed" says why only there). */
function describe(err: unknown): string {
  const e = err as Error & { cause?: Error };
  return e.cause?.message === undefined ? e.message : `${e.message}: ${e.cause.message}`;
}

type Lib = typeof import('@achingbrain/nat-port-mapper');
let loading: Promise<Lib> | undefined;

/**
 * The protocols' library, loaded once; the daemon starts this while its piece server starts, so the
 * mapping (which needs the server's port) does not wait for the module graph (xml2js, SSDP) too.
 */
export function loadPortMappingLibrary(): Promise<Lib> {
  loading ??= import('@achingbrain/nat-port-mapper');
  return loading;
}

/** The first IPv4 Internet Gateway Device that answers the SSDP search. */
async function findUpnpGateway(lib: Lib): Promise<Gateway> {
  // The library speaks SOAP with the global fetch. Node 20's own fetch (undici 6) cannot dispatch
  // through the undici 7 Agent that the daemon's tracker client made the process's global one
  // ("invalid content-length header" on every POST), so the global fetch becomes undici 7's.
  if (globalThis.fetch !== (undiciFetch as unknown))
    globalThis.fetch = undiciFetch as unknown as typeof fetch;
  const client = lib.upnpNat({ autoRefresh: false });
  const signal = AbortSignal.timeout(PORT_MAPPING_DEFAULTS.upnpTimeoutMs);
  try {
    for await (const gateway of client.findGateways({ signal })) {
      if (gateway.family === 'IPv4') return gateway;
    }
  } catch (err) {
    if (!signal.aborted) throw err;
  }
  throw new PortMappingError('no-gateway', 'no UPnP gateway answered');
}

/** The gateway of the IPv4 default route, from /proc/net/route (Linux); undefined elsewhere. */
export function defaultGateway(routes = readRoutes()): string | undefined {
  for (const line of routes.split('\n').slice(1)) {
    const [, destination, gateway, flags] = line.trim().split(/\s+/);
    // RTF_UP | RTF_GATEWAY, destination 0.0.0.0
    if (destination !== '00000000' || gateway === undefined || (Number.parseInt(flags ?? '0', 16) & 3) !== 3)
      continue;
    const n = Number.parseInt(gateway, 16);
    return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24].join('.');
  }
  return undefined;
}

function readRoutes(): string {
  try {
    return readFileSync('/proc/net/route', 'utf8');
  } catch {
    return '';
  }
}

/** Our address on the route to `host`: a connected UDP socket's local end (no packet is sent). */
function localAddressToward(host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.once('error', (err) => {
      socket.close();
      reject(new PortMappingError('no-gateway', `no route to ${host}: ${err.message}`));
    });
    socket.connect(9, host, () => {
      const { address } = socket.address();
      socket.close();
      resolve(address);
    });
  });
}
