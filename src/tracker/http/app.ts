import type { SecureContextOptions } from 'node:tls';
import swagger from '@fastify/swagger';
import websocket from '@fastify/websocket';
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import type { Logger } from 'pino';
import {
  ErrorBodySchema,
  IDEMPOTENCY_KEY_HEADER,
  IDEMPOTENCY_KEY_PATTERN,
  OPENAPI_PATH,
  ROUTES,
  type RouteName,
  type RouteSpec,
  SESSION_PATH,
  type StoreHealth,
} from '../../protocol/api.js';
import { CoterieError } from '../../protocol/errors.js';
import { MAX_PAGE_BODY_BYTES } from '../../protocol/manifest-pages.js';
import { MAX_SESSION_FRAME_BYTES } from '../../protocol/session.js';
import type { IdempotencyService, StoredResponse } from '../services/idempotency.js';
import { idempotencyContext } from '../store/index.js';
import type { SessionHub } from '../ws/hub.js';
import { type AccountCreationLimit, registerAccountCreationLimit } from './address-limits.js';
import { toCoterieError } from './errors.js';
import { registerHealthRoutes } from './health.js';
import type { TrackerMetrics } from './metrics.js';
import { createHandlers, type Handler, type HandlerResult, type TrackerServices } from './routes.js';

export interface HttpAppOptions {
  logger: Logger;
  metrics: TrackerMetrics;
  services: TrackerServices;
  hub: SessionHub;
  trackerId: string;
  version: string;
  bodyLimitBytes: number;
  shareBodyLimitBytes: number;
  /** Message routes: a body of the largest message, JSON-escaped; the service checks the real size. */
  messageBodyLimitBytes: number;
  tls?: SecureContextOptions & { cert: string | Buffer; key: string | Buffer };
  /** Stores answers to writes sent with an Idempotency-Key header (cluster retries). */
  idempotency?: IdempotencyService;
  /** The store for /healthz and /readyz (default: a SQLite store, always ready). */
  storeHealth?: () => StoreHealth;
  /** Called once per answered request (the cluster heartbeat reports the rate). */
  countRequest?: () => void;
  accountCreation: AccountCreationLimit;
  /**
   * fastify's trustProxy: the proxies (addresses, CIDRs, or a hop count) whose X-Forwarded-For
   * names the client; without it the header is ignored and the socket's address is the client's.
   */
  trustProxy?: string | number;
}

/**
 * Writes whose answer is kept for an Idempotency-Key. Not login (its answer
 * is a bearer token, never stored in clear) nor the calls that change nothing
 * a retry could duplicate.
 */
const NOT_IDEMPOTENT_STORED: ReadonlySet<string> = new Set(['login', 'logout', 'getTicket']);
const idempotencyKeyPattern = new RegExp(IDEMPOTENCY_KEY_PATTERN);

/**
 * Routes whose write transaction returns their answer's body: a retry whose
 * first attempt committed without recording its answer gets that body back
 * (when the re-run is refused as a duplicate) instead of the refusal.
 */
function answerFromMarker(route: string, body: unknown, err: unknown): HandlerResult | undefined {
  const refused = toCoterieError(err);
  if (refused === undefined || refused.status < 400 || refused.status >= 500) return undefined;
  if (typeof body !== 'object' || body === null) return undefined;
  switch (route) {
    case 'createGroup':
    case 'acceptRequest':
    case 'declineRequest':
    case 'leaveGroup':
    case 'removeMember':
      return { body };
    case 'shareFile':
      return { status: (body as { created?: unknown }).created === true ? 201 : 200, body };
    case 'updateFile':
      // The versions the retention dropped then are not in the marker: gone either way.
      return {
        status: (body as { created?: unknown }).created === true ? 201 : 200,
        body: { dropped: [], ...body },
      };
    case 'deleteFile':
      return { body };
    default:
      return undefined;
  }
}

/** For a write refused with an API error (4xx): its key's record as it is now, if any. */
async function refusedRetry(
  err: unknown,
  lookup: () => Promise<StoredResponse | undefined>,
): Promise<StoredResponse | undefined> {
  const refused = toCoterieError(err);
  if (refused === undefined || refused.status < 400 || refused.status >= 500) return undefined;
  return lookup();
}

function idempotencyKey(request: FastifyRequest): string | undefined {
  const h = request.headers[IDEMPOTENCY_KEY_HEADER];
  if (h === undefined) return undefined;
  if (typeof h !== 'string' || !idempotencyKeyPattern.test(h)) {
    throw new CoterieError(
      'BAD_REQUEST',
      `invalid ${IDEMPOTENCY_KEY_HEADER} header: 1 to 128 characters among A-Z a-z 0-9 _ . : -`,
    );
  }
  return h;
}

declare module 'fastify' {
  interface FastifyRequest {
    caller: import('../services/users.js').Caller | null;
  }
}

/** A hop count as proxy-addr's function (fastify's types take only its other forms). */
function trustedProxies(trust: string | number): string | ((address: string, hop: number) => boolean) {
  return typeof trust === 'number' ? (_address, hop) => hop < trust : trust;
}

function bearer(request: FastifyRequest): string | undefined {
  const h = request.headers.authorization;
  if (typeof h !== 'string') return undefined;
  const m = /^Bearer\s+(\S+)$/i.exec(h);
  return m?.[1];
}

export async function createHttpApp(options: HttpAppOptions): Promise<FastifyInstance> {
  const { logger, metrics, services, hub } = options;
  const app = Fastify({
    loggerInstance: logger,
    // Per-request log lines would dominate the cost of hot routes; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimitBytes,
    ...(options.trustProxy === undefined ? {} : { trustProxy: trustedProxies(options.trustProxy) }),
    ...(options.tls ? { https: options.tls } : {}),
    ajv: {
      // Reject what the schema does not describe instead of silently dropping or converting it.
      customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false },
    },
    return503OnClosing: true,
    // On close: drop idle keep-alive connections, let in-flight requests finish before the store closes.
    forceCloseConnections: 'idle',
  }) as unknown as FastifyInstance;

  app.decorateRequest('caller', null);

  // JSON bodies: an empty body is "no body" (clients often send Content-Type on bodiless POSTs).
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = body as string;
    if (text.trim() === '') {
      done(null, undefined);
      return;
    }
    try {
      done(null, JSON.parse(text));
    } catch {
      done(new CoterieError('BAD_REQUEST', 'request body is not valid JSON'), undefined);
    }
  });

  app.setErrorHandler((err, request, reply) => {
    let e = toCoterieError(err);
    if (e === undefined) {
      request.log.error({ err, url: request.url, method: request.method }, 'request failed');
      e = new CoterieError('INTERNAL', 'internal error: please report it with the tracker log line');
    }
    metrics.errors.inc({ code: e.code });
    // A retry hint: a rate limit's, or a store failing over's (UNAVAILABLE).
    if (typeof e.details?.retryAfterSeconds === 'number') {
      void reply.header('retry-after', String(e.details.retryAfterSeconds));
    }
    void reply.code(e.status).send(e.toJSON());
  });

  app.setNotFoundHandler((request, reply) => {
    metrics.errors.inc({ code: 'NOT_FOUND' });
    void reply
      .code(404)
      .send(
        new CoterieError(
          'NOT_FOUND',
          `no route ${request.method} ${request.url.split('?')[0]!.slice(0, 200)}: see ${OPENAPI_PATH}`,
        ).toJSON(),
      );
  });

  // Callback style, not async: one promise less on every request of the hot routes.
  app.addHook('onResponse', (request, reply, done) => {
    options.countRequest?.();
    const route = request.routeOptions.url ?? 'unknown';
    metrics.requests.inc({ method: request.method, route, status: String(reply.statusCode) });
    metrics.requestSeconds.observe({ method: request.method, route }, reply.elapsedTime / 1000);
    done();
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Coterie tracker API',
        version: options.version,
        description:
          'Accounts, groups, file registry, tickets and presence. Errors are {"error":{"code","message"}}; ' +
          `the presence session is a WebSocket at ${SESSION_PATH} (messages in src/protocol/session.ts).`,
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
  });
  await app.register(websocket, { options: { maxPayload: 2 * MAX_SESSION_FRAME_BYTES } });

  const createUserLimit = await registerAccountCreationLimit(app, options.accountCreation);
  // Callback style: a token authenticated lately answers without a promise (the hot routes' case).
  const authenticate = (request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void) => {
    const token = bearer(request);
    const known = services.users.cachedCaller(token);
    if (known !== undefined) {
      request.caller = known;
      done();
      return;
    }
    services.users.authenticate(token).then((caller) => {
      request.caller = caller;
      done();
    }, done);
  };

  const handlers = createHandlers(services);
  for (const [name, spec] of Object.entries(ROUTES) as [RouteName, RouteSpec][]) {
    const handler = handlers[name] as Handler;
    app.route({
      method: spec.method,
      url: spec.url,
      ...(name === 'shareFile' || name === 'updateFile' ? { bodyLimit: options.shareBodyLimitBytes } : {}),
      ...(name === 'putManifestPage' ? { bodyLimit: MAX_PAGE_BODY_BYTES } : {}),
      ...(name === 'sendMessage' || name === 'publish' ? { bodyLimit: options.messageBodyLimitBytes } : {}),
      ...(name === 'createUser' ? createUserLimit : {}),
      schema: {
        summary: spec.summary,
        operationId: name,
        ...(spec.auth ? { security: [{ bearer: [] }] } : {}),
        ...(spec.params ? { params: spec.params } : {}),
        ...(spec.querystring ? { querystring: spec.querystring } : {}),
        ...(spec.body ? { body: spec.body } : {}),
        response: { '2xx': spec.response, '4xx': ErrorBodySchema, '5xx': ErrorBodySchema },
      },
      ...(spec.auth ? { preValidation: authenticate } : {}),
      handler: async (request: FastifyRequest, reply: FastifyReply) => {
        const idem =
          options.idempotency !== undefined && spec.method !== 'GET' && !NOT_IDEMPOTENT_STORED.has(name)
            ? idempotencyKey(request)
            : undefined;
        const scope = request.caller?.userId ?? '';
        const input = {
          caller: request.caller,
          params: request.params as Record<string, string>,
          query: request.query as Record<string, string>,
          body: request.body,
          ip: request.ip,
        };
        let result: Awaited<ReturnType<Handler>>;
        if (idem === undefined) {
          result = await handler(input);
        } else {
          const stored = await options.idempotency!.lookup(scope, idem);
          if (stored !== undefined && stored.status > 0) {
            return reply.code(stored.status).header('idempotent-replay', 'true').send(stored.body);
          }
          const write = { scope, key: idem, route: name, at: Date.now(), marked: stored !== undefined };
          try {
            result = await idempotencyContext.run(write, () => handler(input));
          } catch (err) {
            // The first attempt committed (its marker is there) but its answer was lost with its
            // tracker, or it is still being served (its client gave up on it and retried, here or
            // on another tracker) and committed while this one waited on its locks: then its
            // marker is there now. The write refused to happen twice: answer as the first time.
            const first = stored ?? (await refusedRetry(err, () => options.idempotency!.lookup(scope, idem)));
            if (first !== undefined && first.status > 0) {
              return reply.code(first.status).header('idempotent-replay', 'true').send(first.body);
            }
            const answer = first === undefined ? undefined : answerFromMarker(name, first.body, err);
            if (answer === undefined) throw err;
            result = answer;
          }
        }
        const status = result.status ?? spec.status;
        if (idem !== undefined) {
          const body = result.json ? (JSON.parse(result.body as string) as unknown) : result.body;
          await options.idempotency!.remember(scope, idem, name, { status, body });
        }
        if (result.json) {
          return reply
            .code(status)
            .type('application/json; charset=utf-8')
            .send(result.body as string);
        }
        return reply.code(status).send(result.body);
      },
    });
  }

  app.get(OPENAPI_PATH, { schema: { hide: true } }, async () => app.swagger());

  registerHealthRoutes(app, {
    trackerId: options.trackerId,
    version: options.version,
    sessions: () => hub.sessionCount(),
    store:
      options.storeHealth ?? (() => ({ dialect: 'sqlite' as const, acknowledgedOn: 'one-machine' as const })),
  });

  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    metrics.sessions.set(hub.sessionCount());
    void reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  app.route({
    method: 'GET',
    url: SESSION_PATH,
    preValidation: authenticate,
    schema: { summary: 'presence session (WebSocket upgrade; messages in src/protocol/session.ts)' },
    // A plain GET (no upgrade) gets a coded error rather than an empty 404.
    handler: async () => {
      throw new CoterieError(
        'BAD_REQUEST',
        `${SESSION_PATH} is a WebSocket: connect with an Upgrade: websocket request`,
      );
    },
    wsHandler: (socket, request) => {
      metrics.sessionsOpened.inc();
      // The upgraded request's socket is the one `ws` writes to: the hub corks it for bursts of
      // answers through this public handle instead of `ws`'s private `_socket`.
      hub.accept(socket, request.caller!, request.raw.socket);
    },
  });

  return app;
}
