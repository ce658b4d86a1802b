import type { TLSSocket } from 'node:tls';
import { Agent, buildConnector, fetch as undiciFetch } from 'undici';
import { CoterieError } from '../protocol/errors.js';
import { certificateFingerprint, parseTrackerAddress } from '../protocol/tracker-url.js';

/**
 * fetch() that accepts only the certificate whose SHA-256 is `fingerprint`
 * (a tracker's self-signed one, from `url#sha256=…`), checked after the
 * handshake and before the request, which carries a token, is written.
 */
function pinnedFetch(fingerprint: string): typeof undiciFetch {
  const base = buildConnector({ rejectUnauthorized: false, maxCachedSessions: 0 });
  const dispatcher = new Agent({
    connect: (opts, callback) =>
      base(opts, (err, socket) => {
        if (err !== null) return callback(err, null);
        const raw = (socket as TLSSocket).getPeerCertificate?.()?.raw;
        if (raw === undefined || certificateFingerprint(raw) !== fingerprint) {
          socket.destroy();
          return callback(
            new CoterieError(
              'TRACKER_CERT_CHANGED',
              `the tracker's certificate is not sha256 ${fingerprint}`,
            ),
            null,
          );
        }
        callback(null, socket);
      }),
  });
  return (input, init) => undiciFetch(input, { ...init, dispatcher });
}

/**
 * A standalone relay's token check: the tracker's GET /v1/whoami, cached
 * briefly (a circuit and its accept cost two checks) so the relay does not
 * ask the tracker for every connection. A logout reaches the relay within
 * `cacheMs`.
 */
export function whoamiAuthenticator(
  trackerUrl: string,
  options: { cacheMs?: number; timeoutMs?: number } = {},
): (token: string) => Promise<{ userId: string }> {
  const cacheMs = options.cacheMs ?? 5_000;
  const cache = new Map<string, { userId: string; until: number }>();
  const tracker = parseTrackerAddress(trackerUrl);
  const get = tracker.fingerprint === undefined ? undiciFetch : pinnedFetch(tracker.fingerprint);
  return async (token) => {
    const hit = cache.get(token);
    if (hit !== undefined && hit.until > Date.now()) return { userId: hit.userId };
    const res = await get(new URL('/v1/whoami', tracker.origin), {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(options.timeoutMs ?? 5_000),
    });
    if (!res.ok) throw new CoterieError('UNAUTHENTICATED', `the tracker refused the token (${res.status})`);
    const body = (await res.json()) as { userId?: unknown };
    if (typeof body.userId !== 'string') throw new CoterieError('UNAUTHENTICATED', 'no user in whoami');
    if (cache.size > 10_000) cache.clear();
    cache.set(token, { userId: body.userId, until: Date.now() + cacheMs });
    return { userId: body.userId };
  };
}
