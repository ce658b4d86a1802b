import { CoterieError } from '../protocol/errors.js';

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
  return async (token) => {
    const hit = cache.get(token);
    if (hit !== undefined && hit.until > Date.now()) return { userId: hit.userId };
    const res = await fetch(new URL('/v1/whoami', trackerUrl), {
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
