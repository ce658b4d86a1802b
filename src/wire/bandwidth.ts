/**
 * The daemon's bandwidth limits as buckets on the wire: global upload and
 * download, one pair per group, one per download that asked for a limit,
 * and the schedule slot's pair above them all. A connection is throttled by
 * every bucket that holds it (a download's bytes count against its own
 * limit, its group's, the global one and the slot's), and limits changed at
 * run time apply to the connections already open: each re-checks at least
 * every 250 ms (throttle.ts).
 *
 * Peers on the local network (loopback, RFC 1918, link-local, IPv6 ULA) may
 * be exempted; that is off by default, so a limit holds on loopback too
 * (and the tests measure it there).
 */
import { BlockList, isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import { TokenBucket } from '../core/token-bucket.js';
import type { Clock } from './clock.js';
import type { Dial } from './dial.js';
import { type GatedDirection, LinkThrottle } from './throttle.js';

/** Limits as the control API says them: bytes per second, 0 = unlimited. */
export interface RateLimits {
  uploadBytesPerSec: number;
  downloadBytesPerSec: number;
}

/** Each direction's rate imposed by the schedule's current slot (Infinity: none, 0: paused). */
export interface SlotRates {
  upBytesPerSec: number;
  downBytesPerSec: number;
}

interface Pair {
  up: TokenBucket;
  down: TokenBucket;
}

const UNLIMITED = Number.POSITIVE_INFINITY;

const LOCAL_NETWORKS = (() => {
  const list = new BlockList();
  list.addSubnet('127.0.0.0', 8, 'ipv4');
  list.addSubnet('10.0.0.0', 8, 'ipv4');
  list.addSubnet('172.16.0.0', 12, 'ipv4');
  list.addSubnet('192.168.0.0', 16, 'ipv4');
  list.addSubnet('169.254.0.0', 16, 'ipv4');
  list.addAddress('::1', 'ipv6');
  list.addSubnet('fe80::', 10, 'ipv6');
  list.addSubnet('fc00::', 7, 'ipv6');
  return list;
})();

/** Whether an address is on the local network: loopback, RFC 1918, link-local or IPv6 ULA. */
export function isLocalAddress(address: string | undefined): boolean {
  if (address === undefined) return false;
  // An IPv4 client of a dual-stack listener shows as ::ffff:a.b.c.d.
  const plain = address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
  const family = isIP(plain);
  if (family === 0) return false;
  return LOCAL_NETWORKS.check(plain, family === 4 ? 'ipv4' : 'ipv6');
}

export interface BandwidthOptions {
  clock: Clock;
  upload?: number;
  download?: number;
  /** Leave connections to and from the local network unthrottled. */
  exemptLocal?: boolean;
}

export class Bandwidth {
  readonly clock: Clock;
  exemptLocal: boolean;
  readonly #global: Pair;
  readonly #slot: Pair;
  readonly #groups = new Map<string, Pair>();

  constructor(options: BandwidthOptions) {
    this.clock = options.clock;
    this.exemptLocal = options.exemptLocal ?? false;
    this.#global = this.#pair();
    this.#slot = this.#pair();
    this.setGlobal({ uploadBytesPerSec: options.upload ?? 0, downloadBytesPerSec: options.download ?? 0 });
  }

  /** The global limits (a field left out keeps its value); 0 lifts one. */
  setGlobal(limits: Partial<RateLimits>): RateLimits {
    this.#set(this.#global, limits);
    return limitsOf(this.#global);
  }

  /** A group's limits; 0 lifts one. */
  setGroup(groupId: string, limits: Partial<RateLimits>): RateLimits {
    const pair = this.#group(groupId);
    this.#set(pair, limits);
    return limitsOf(pair);
  }

  /** What the schedule's current slot imposes over every limit (Infinity: nothing). */
  setSlot(rates: SlotRates): void {
    const now = this.clock.now();
    this.#slot.up.setRate(rates.upBytesPerSec, now);
    this.#slot.down.setRate(rates.downBytesPerSec, now);
  }

  global(): RateLimits {
    return limitsOf(this.#global);
  }

  /** Groups with a limit in force. */
  groups(): (RateLimits & { groupId: string })[] {
    return [...this.#groups]
      .map(([groupId, pair]) => ({ groupId, ...limitsOf(pair) }))
      .filter((g) => g.uploadBytesPerSec > 0 || g.downloadBytesPerSec > 0)
      .sort((a, b) => a.groupId.localeCompare(b.groupId));
  }

  /** A per-download limit's bucket (0: unlimited), charged by every connection of that download. */
  downloadBucket(bytesPerSec: number): TokenBucket {
    return new TokenBucket(bytesPerSec > 0 ? bytesPerSec : UNLIMITED, this.clock.now());
  }

  /**
   * The rate a download's reads are held to now: the lowest of its own limit, its group's, the
   * global one and the schedule slot's (Infinity: none; 0: paused).
   */
  downloadRate(groupId: string, own?: TokenBucket): number {
    const buckets = [own, this.#groups.get(groupId)?.down, this.#global.down, this.#slot.down];
    let rate = UNLIMITED;
    for (const b of buckets) if (b?.limited) rate = Math.min(rate, b.rateBytesPerSec);
    return rate;
  }

  /**
   * The throttle of a connection: serving a group's file (its upload gated),
   * or fetching one (its reads gated, under the download's own bucket when
   * it has one). None for a local peer when those are exempt.
   */
  link(
    stream: Duplex,
    options: {
      groupId: string;
      gates: GatedDirection;
      remoteAddress?: string | undefined;
      download?: TokenBucket | undefined;
    },
  ): LinkThrottle | undefined {
    if (this.exemptLocal && isLocalAddress(options.remoteAddress)) return undefined;
    const group = this.#group(options.groupId);
    const own = options.download === undefined ? [] : [options.download];
    const up = [group.up, this.#global.up, this.#slot.up];
    const down = [...own, group.down, this.#global.down, this.#slot.down];
    return new LinkThrottle(this.clock, up, down, options.gates).attach(stream);
  }

  /**
   * A dial whose connections have their reads held to a group's download
   * limits, the global ones and, given one, the download's own bucket.
   */
  throttledDial(dial: Dial, groupId: string, download?: TokenBucket): Dial {
    return async (target, signal, reads) => {
      const dialed = await dial(target, signal, reads);
      const remoteAddress = (dialed.stream as { remoteAddress?: string }).remoteAddress;
      const throttle = this.link(dialed.stream, { groupId, gates: 'down', remoteAddress, download });
      return throttle === undefined ? dialed : { ...dialed, throttle };
    };
  }

  #pair(): Pair {
    const now = this.clock.now();
    return { up: new TokenBucket(UNLIMITED, now), down: new TokenBucket(UNLIMITED, now) };
  }

  #group(groupId: string): Pair {
    let pair = this.#groups.get(groupId);
    if (pair === undefined) {
      pair = this.#pair();
      this.#groups.set(groupId, pair);
    }
    return pair;
  }

  #set(pair: Pair, limits: Partial<RateLimits>): void {
    const now = this.clock.now();
    if (limits.uploadBytesPerSec !== undefined) pair.up.setRate(rateOf(limits.uploadBytesPerSec), now);
    if (limits.downloadBytesPerSec !== undefined) pair.down.setRate(rateOf(limits.downloadBytesPerSec), now);
  }
}

function rateOf(limit: number): number {
  return limit > 0 ? limit : UNLIMITED;
}

function limitsOf(pair: Pair): RateLimits {
  const shown = (b: TokenBucket) => (b.limited ? b.rateBytesPerSec : 0);
  return { uploadBytesPerSec: shown(pair.up), downloadBytesPerSec: shown(pair.down) };
}
