import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import tls from 'node:tls';
import { Agent, buildConnector, fetch as undiciFetch } from 'undici';
import type { ClientOptions } from 'ws';
import { CoterieError } from '../../protocol/errors.js';
import type { TrackerPins } from './pins.js';

/**
 * How a peer trusts its https:// / wss:// trackers, without touching the
 * process-wide trust store: a fetch bound to an undici Agent, and the
 * matching options for the WebSocket session. Either a CA given with
 * `--tracker-ca` (chain and host name checked as usual), or, by default, the
 * pinned fingerprints of TrackerPins, checked right after the handshake and
 * before a byte of the request (its token) is written.
 */
export interface TrackerTrust {
  readonly fetch: typeof fetch;
  /** Options for `new WebSocket(…)` to the tracker at `origin`. */
  webSocketOptions(origin: string): ClientOptions;
}

function boundFetch(dispatcher: Agent): typeof fetch {
  const bound = (input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) =>
    undiciFetch(input as Parameters<typeof undiciFetch>[0], {
      ...(init as Parameters<typeof undiciFetch>[1]),
      dispatcher,
    });
  // undici's fetch is the implementation behind the global one; only its type declarations differ.
  return bound as unknown as typeof fetch;
}

/** Trusts the CA certificate(s) in `caPem` (--tracker-ca). */
export function caTrust(caPem: string): TrackerTrust {
  const fetchWithCa = boundFetch(new Agent({ connect: { ca: caPem } }));
  return { fetch: fetchWithCa, webSocketOptions: () => ({ ca: caPem }) };
}

/** `https://host:port` as the pool names it, from a connection's host and port. */
function originOf(hostname: string, port: string | number): string {
  const host = isIP(hostname) === 6 ? `[${hostname}]` : hostname;
  return new URL(`https://${host}:${port}`).origin;
}

/** Trusts the certificates `pins` holds or pins (see TrackerPins). */
export function pinnedTrust(pins: TrackerPins): TrackerTrust {
  // No TLS session resumption: a resumed session shows no certificate to check.
  const base = buildConnector({ rejectUnauthorized: false, maxCachedSessions: 0 });
  const agent = new Agent({
    connect: (opts, callback) =>
      base(opts, (...args) => {
        const [err, socket] = args;
        if (err !== null || opts.protocol !== 'https:') return callback(...args);
        try {
          pins.check(originOf(opts.hostname, opts.port || 443), socket as tls.TLSSocket);
        } catch (e) {
          socket.destroy();
          return callback(e as Error, null);
        }
        callback(null, socket);
      }),
  });
  return {
    fetch: boundFetch(agent),
    webSocketOptions: (origin) => ({
      // As ws's own tlsConnect, not rejecting what no CA signed; the pin is checked before the
      // upgrade request (which carries the token) leaves: TLS holds writes until secureConnect.
      createConnection: (options) => {
        const o = options as tls.ConnectionOptions & { path?: string };
        const servername = o.servername ?? (o.host === undefined || isIP(o.host) !== 0 ? '' : o.host);
        const socket = tls.connect({ ...o, path: undefined, rejectUnauthorized: false, servername });
        socket.prependOnceListener('secureConnect', () => {
          try {
            pins.check(origin, socket);
          } catch (e) {
            socket.destroy(e as Error);
          }
        });
        return socket;
      },
    }),
  };
}

/** Reads a CA file for `--tracker-ca`, with an error that says what is wrong. */
export function readTrackerCa(path: string): string {
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (err) {
    throw new CoterieError(
      'PATH_INVALID',
      `cannot read the tracker CA file '${path}': ${(err as Error).message}`,
    );
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new CoterieError(
      'PATH_INVALID',
      `'${path}' holds no PEM certificate: pass the tracker's CA certificate`,
    );
  }
  return pem;
}
