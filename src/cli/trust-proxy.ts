import { isIP } from 'node:net';
import { CoterieError } from '../protocol/errors.js';

/** proxy-addr's (fastify's) names for address ranges. */
const RANGE_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

function isProxyAddress(entry: string): boolean {
  if (RANGE_NAMES.has(entry)) return true;
  const [address, prefix, extra] = entry.split('/');
  if (extra !== undefined || address === undefined) return false;
  const family = isIP(address);
  if (family === 0) return false;
  if (prefix === undefined) return true;
  if (!/^\d{1,3}$/.test(prefix)) return false;
  return Number(prefix) <= (family === 4 ? 32 : 128);
}

/**
 * `--trust-proxy`: the reverse proxies whose X-Forwarded-For names the client,
 * as addresses, CIDRs and proxy-addr's range names (`loopback`, …), or a hop
 * count. Never "trust everyone": a client could then pick the address its
 * per-address limits count by sending the header itself.
 */
export function parseTrustProxy(value: string | undefined): string | number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) {
    const hops = Number(trimmed);
    if (hops >= 1 && hops <= 16) return hops;
  } else {
    const entries = trimmed.split(',').map((e) => e.trim());
    if (entries.length > 0 && entries.every(isProxyAddress)) return entries.join(',');
  }
  throw new CoterieError(
    'USAGE',
    `invalid --trust-proxy '${value}': give the proxies' addresses or CIDRs (127.0.0.1,10.0.0.0/8, loopback) or a hop count 1-16`,
  );
}
