import { randomUUID } from 'node:crypto';
import type { Static } from '@sinclair/typebox';
import { IDEMPOTENCY_KEY_HEADER, ROUTES, type RouteName } from '../../protocol/api.js';
import { CoterieError } from '../../protocol/errors.js';
import { PEER_DEFAULTS } from '../config.js';
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
  /**
   * How long a call keeps trying the cluster's trackers (with the pool's
   * backoff) while they fail, once some tracker has answered: long enough to
   * outlast a failover, so commands keep working while a tracker dies.
   */
  retryForMs?: number;
  /** Why the last connection to a tracker was refused (a changed certificate): reported instead of TRACKER_UNAVAILABLE. */
  refusal?: (origin: string) => CoterieError | undefined;
  /** For tests. */
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

const DEFAULT_TIMEOUT_MS = PEER_DEFAULTS.trackerCallTimeoutMs;
const DEFAULT_RETRY_FOR_MS = PEER_DEFAULTS.trackerRetryForMs;

/**
 * A typed client of the tracker's REST API (routes and types from
 * protocol/api.ts). A tracker that does not answer (refused, reset, timed
 * out, shutting down with 503, found dead by the session's heartbeat) is left
 * for the next one of the pool, and the call is sent again there. Writes
 * carry an idempotency key, the same on every attempt, so a write that the
 * dead tracker did commit is answered from the store instead of running
 * twice. API errors come back as CoterieError with their code.
 */
export class TrackerHttpClient {
  private readonly pool: TrackerPool;
  private readonly getToken: () => string | undefined;
  private readonly timeoutMs: number;
  private readonly retryForMs: number;
  private readonly fetch: typeof fetch;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly now: () => number;
  private readonly refusal: TrackerHttpClientOptions['refusal'];
  /** Calls in flight per tracker: aborted when the pool finds that tracker dead. */
  private readonly inFlight = new Map<string, Set<AbortController>>();

  constructor(options: TrackerHttpClientOptions) {
    this.pool = options.pool;
    this.getToken = options.getToken;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.retryForMs = options.retryForMs ?? DEFAULT_RETRY_FOR_MS;
    this.fetch = options.fetch ?? ((input, init) => fetch(input, init));
    this.sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.now = options.now ?? Date.now;
    this.refusal = options.refusal;
    this.pool.on('failed', (url) => {
      for (const c of this.inFlight.get(url) ?? []) c.abort(new Error('tracker lost'));
    });
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

    if (route.method !== 'GET') headers[IDEMPOTENCY_KEY_HEADER] = randomUUID();

    // API errors are answers, not failures. A failing tracker is left for the next one; before
    // any tracker ever answered, one pass over the list; after, retries for retryForMs.
    const startedAt = this.now();
    let lastError = '';
    for (let attempt = 1; ; attempt++) {
      const base = this.pool.current;
      const outcome = await this.attempt(base, path, route.method, headers, body);
      if (outcome.ok) return outcome.value as RouteResponse<N>;
      lastError = `${base}: ${outcome.error}`;
      this.pool.failed(base);
      const firstPassOver = attempt >= this.pool.urls.length;
      const outOfTime = this.now() - startedAt >= this.retryForMs;
      if ((firstPassOver && !this.pool.reachedOnce) || outOfTime) break;
      const delay = Math.min(this.pool.delayMs(), this.retryForMs - (this.now() - startedAt));
      if (delay > 0) await this.sleep(delay);
    }
    const refused = this.pool.urls.map((u) => this.refusal?.(u)).find((e) => e !== undefined);
    throw (
      refused ??
      new CoterieError(
        'TRACKER_UNAVAILABLE',
        `no tracker answers (${lastError}); check that one runs at ${this.pool.urls.join(', ')}`,
      )
    );
  }

  /** One attempt at one tracker: the answer (or API error, thrown), or why the tracker failed. */
  private async attempt(
    base: string,
    path: string,
    method: string,
    headers: Record<string, string>,
    body: string | undefined,
  ): Promise<{ ok: true; value: unknown } | { ok: false; error: string }> {
    const controller = new AbortController();
    let set = this.inFlight.get(base);
    if (set === undefined) {
      set = new Set();
      this.inFlight.set(base, set);
    }
    set.add(controller);
    let res: Response;
    let text: string;
    try {
      res = await this.fetch(base + path, {
        method,
        headers,
        body,
        signal: AbortSignal.any([controller.signal, AbortSignal.timeout(this.timeoutMs)]),
      });
      text = await res.text();
    } catch (err) {
      // A certificate that is not the pinned one is an answer too, and the caller must see it.
      const cause = (err as { cause?: unknown }).cause;
      if (cause instanceof CoterieError && cause.code === 'TRACKER_CERT_CHANGED') {
        this.pool.failed(base);
        throw cause;
      }
      return { ok: false, error: errorText(err) };
    } finally {
      set.delete(controller);
      if (set.size === 0) this.inFlight.delete(base);
    }
    // 503 without our error body: the tracker is shutting down (or a proxy has no tracker behind it).
    let json: unknown;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      if (res.status >= 500) return { ok: false, error: `HTTP ${res.status}` };
      throw new CoterieError(
        'TRACKER_UNAVAILABLE',
        `tracker ${base} sent a non-JSON answer (HTTP ${res.status})`,
      );
    }
    if (res.status === 503 || res.status === 502 || res.status === 504) {
      const e = CoterieError.fromBody(json, `HTTP ${res.status}`);
      if (e.code === 'UNAVAILABLE' || e.code === 'INTERNAL')
        return { ok: false, error: `HTTP ${res.status}` };
    }
    this.pool.succeeded(base);
    if (!res.ok) throw CoterieError.fromBody(json, `tracker ${base} answered HTTP ${res.status}`);
    return { ok: true, value: json };
  }
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return cause?.code ?? cause?.message ?? err.message;
  }
  return String(err);
}
