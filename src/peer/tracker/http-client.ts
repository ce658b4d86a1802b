import type { Static } from '@sinclair/typebox';
import { ROUTES, type RouteName } from '../../protocol/api.js';
import { CoterieError } from '../../protocol/errors.js';
import type { TrackerPool } from './pool.js';

export type RouteResponse<N extends RouteName> = Static<(typeof ROUTES)[N]['response']>;
type RouteBody<N extends RouteName> = (typeof ROUTES)[N] extends { body: infer B }
  ? B extends import('@sinclair/typebox').TSchema
    ? Static<B>
    : never
  : undefined;

export interface CallInput<N extends RouteName> {
  params?: Record<string, string>;
  query?: Record<string, string>;
  body?: RouteBody<N>;
}

export interface TrackerHttpClientOptions {
  pool: TrackerPool;
  /** The session token, when logged in. */
  getToken: () => string | undefined;
  /** Per request, so a dead tracker costs seconds, not minutes. */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * A typed client of the tracker's REST API (routes and types from
 * protocol/api.ts). A tracker that does not answer is skipped for the next
 * one of the pool; API errors come back as CoterieError with their code.
 */
export class TrackerHttpClient {
  private readonly pool: TrackerPool;
  private readonly getToken: () => string | undefined;
  private readonly timeoutMs: number;

  constructor(options: TrackerHttpClientOptions) {
    this.pool = options.pool;
    this.getToken = options.getToken;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  async call<N extends RouteName>(name: N, input: CallInput<N> = {}): Promise<RouteResponse<N>> {
    const route = ROUTES[name];
    let path: string = route.url.replace(/:([a-zA-Z]+)/g, (_, key: string) => {
      const v = input.params?.[key];
      if (v === undefined) throw new CoterieError('INTERNAL', `missing route parameter ${key} for ${name}`);
      return encodeURIComponent(v);
    });
    if (input.query !== undefined && Object.keys(input.query).length > 0) {
      path += `?${new URLSearchParams(input.query).toString()}`;
    }
    const headers: Record<string, string> = { accept: 'application/json' };
    if (route.auth) {
      const token = this.getToken();
      if (token === undefined) {
        throw new CoterieError('NOT_LOGGED_IN', "not logged in: run 'login <user_id> <password>' first");
      }
      headers.authorization = `Bearer ${token}`;
    }
    const body = input.body === undefined ? undefined : JSON.stringify(input.body);
    if (body !== undefined) headers['content-type'] = 'application/json';

    // Each tracker of the list at most once per call; API errors are answers, not failures.
    let lastError = '';
    for (let attempt = 0; attempt < this.pool.urls.length; attempt++) {
      const base = this.pool.current;
      let res: Response;
      try {
        res = await fetch(base + path, {
          method: route.method,
          headers,
          body,
          signal: AbortSignal.timeout(this.timeoutMs),
        });
      } catch (err) {
        lastError = `${base}: ${errorText(err)}`;
        this.pool.failed(base);
        continue;
      }
      this.pool.succeeded(base);
      const text = await res.text();
      let json: unknown;
      try {
        json = text === '' ? undefined : JSON.parse(text);
      } catch {
        throw new CoterieError(
          'TRACKER_UNAVAILABLE',
          `tracker ${base} sent a non-JSON answer (HTTP ${res.status})`,
        );
      }
      if (!res.ok) throw CoterieError.fromBody(json, `tracker ${base} answered HTTP ${res.status}`);
      return json as RouteResponse<N>;
    }
    throw new CoterieError(
      'TRACKER_UNAVAILABLE',
      `no tracker answers (${lastError}); check that one runs at ${this.pool.urls.join(', ')}`,
    );
  }
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return cause?.code ?? cause?.message ?? err.message;
  }
  return String(err);
}
