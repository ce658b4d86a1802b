import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import cookie from '@fastify/cookie';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import fastifyStatic from '@fastify/static';
import websocket from '@fastify/websocket';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { MAX_CONTROL_BODY_BYTES } from '../../protocol/control.js';
import { CoterieError } from '../../protocol/errors.js';
import type { TransferProgress } from '../../protocol/peer-events.js';
import { type TicketAnswer, UI_PATHS, UI_SESSION_COOKIE, type UiSessionInfo } from '../../protocol/ui.js';
import { PEER_DEFAULTS } from '../config.js';
import { asCommandRequest } from '../control/index.js';
import type { PeerEvent } from '../notices.js';
import { EventLog } from './event-log.js';
import { EventStream } from './event-stream.js';

import {
  checkHost,
  checkSameOrigin,
  ownHosts,
  requirePageRequest,
  requireSession,
  sendError,
} from './guards.js';
import { SESSION_LIMITS, sameSecret, UiSessions } from './sessions.js';

export type UiExecute = (name: string, args: string[]) => Promise<unknown>;

export interface UiServerOptions {
  /** Runs one command of the control API (the daemon's execute). */
  execute: UiExecute;
  /** The running downloads' peers and piece maps, for a page's snapshot. */
  transfers?: () => TransferProgress[];
  /** Subscribes to the daemon's event stream; answers the unsubscribe. */
  subscribe(listener: (e: PeerEvent) => void): () => void;
  /** The control API's token: who holds it may ask for a login link. */
  controlToken: string;
  peerId: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** The bundled page (default: dist/web of this package). */
  staticDir?: string;
  /** Login attempts per minute and address. */
  loginAttemptsPerMinute?: number;
  log?: Logger;
}

export interface UiServer {
  readonly host: string;
  readonly port: number;
  /** A one-time login link (what `coterie ui` prints). */
  loginUrl(): string;
  stop(): Promise<void>;
}

export const UI_HOST = '127.0.0.1';

/** dist/web, from src/peer/ui (tests) as from dist/peer/ui (the daemon). */
const DEFAULT_STATIC = fileURLToPath(new URL('../../../dist/web/', import.meta.url));

/** default-src 'self' and nothing else: no inline script or style, no other origin, no framing. */
const CSP = {
  useDefaults: false,
  directives: {
    defaultSrc: ["'self'"],
    scriptSrc: ["'self'"],
    styleSrc: ["'self'"],
    imgSrc: ["'self'", 'data:'],
    connectSrc: ["'self'"],
    objectSrc: ["'none'"],
    baseUri: ["'none'"],
    formAction: ["'self'"],
    frameAncestors: ["'none'"],
  },
};

/** Fastify's and its plugins' own refusals (rate limit, body size, bad JSON) as coded errors. */
function toCoterieError(err: unknown): CoterieError {
  if (err instanceof CoterieError) return err;
  const status = (err as { statusCode?: number }).statusCode;
  if (status === 429) return new CoterieError('RATE_LIMITED', 'too many login attempts: wait a minute');
  if (status === 413) return new CoterieError('BODY_TOO_LARGE', 'request too large');
  if (status !== undefined && status < 500) return new CoterieError('BAD_REQUEST', (err as Error).message);
  return CoterieError.from(err, 'INTERNAL', (text) => `internal error: ${text}`);
}

async function buildApp(options: UiServerOptions, sessions: UiSessions, stream: EventStream) {
  const app: FastifyInstance = Fastify({ logger: false, bodyLimit: MAX_CONTROL_BODY_BYTES });
  let hosts = new Set<string>();
  const origin = () => `http://${[...hosts][0]}`;

  app.setErrorHandler((err, _request, reply) => sendError(reply, toCoterieError(err)));
  app.setNotFoundHandler((_request, reply) =>
    sendError(reply, new CoterieError('NOT_FOUND', 'no such route')),
  );
  // Before any route, the static files included: a rebound DNS name gets nothing from us.
  app.addHook('onRequest', async (request) => checkHost(request, hosts));

  await app.register(helmet, {
    contentSecurityPolicy: CSP,
    frameguard: { action: 'deny' },
    crossOriginResourcePolicy: { policy: 'same-origin' },
    referrerPolicy: { policy: 'no-referrer' },
    hsts: false, // plain HTTP on loopback
  });
  await app.register(cookie);
  await app.register(rateLimit, { global: false });
  await app.register(websocket, { options: { maxPayload: 64 * 1024 } });

  const staticDir = options.staticDir ?? DEFAULT_STATIC;
  if (existsSync(staticDir)) {
    await app.register(fastifyStatic, { root: staticDir, index: 'index.html', wildcard: false });
  } else {
    app.get('/', async (_request, reply) =>
      reply.type('text/plain').send(`the web UI was not built (${staticDir}): run npm run build`),
    );
  }

  /** The request carries the control API's token (`coterie ui`, the CLI's live modes). */
  const holdsControlToken = (request: FastifyRequest): boolean => {
    const auth = request.headers.authorization;
    const given = auth?.startsWith('Bearer ') ? auth.slice('Bearer '.length) : undefined;
    return sameSecret(given, options.controlToken);
  };

  app.post(UI_PATHS.ticket, async (request): Promise<TicketAnswer> => {
    if (!holdsControlToken(request)) {
      throw new CoterieError('UNAUTHENTICATED', 'wrong or missing control token: read daemon.json');
    }
    const ticket = sessions.issueTicket();
    return { url: `${origin()}${UI_PATHS.login}?t=${ticket}`, expiresInMs: SESSION_LIMITS.ticketTtlMs };
  });

  app.get(
    UI_PATHS.login,
    { config: { rateLimit: { max: options.loginAttemptsPerMinute ?? 20, timeWindow: 60_000 } } },
    async (request, reply) => {
      const ticket = (request.query as { t?: unknown }).t;
      const session = typeof ticket === 'string' ? sessions.redeem(ticket) : undefined;
      if (session === undefined) {
        throw new CoterieError(
          'UNAUTHENTICATED',
          "this login link was used or expired: run 'coterie ui' again",
        );
      }
      reply.setCookie(UI_SESSION_COOKIE, session.id, {
        httpOnly: true,
        sameSite: 'strict',
        path: '/',
      });
      return reply.redirect('/', 303);
    },
  );

  app.post(UI_PATHS.logout, async (request, reply) => {
    const session = requirePageRequest(request, sessions);
    sessions.end(session.id);
    reply.clearCookie(UI_SESSION_COOKIE, { path: '/' });
    return { ok: true, result: null };
  });

  app.get(UI_PATHS.session, async (request): Promise<UiSessionInfo> => {
    const session = requireSession(request, sessions);
    return { csrf: session.csrf, peerId: options.peerId };
  });

  app.post(UI_PATHS.command, async (request, reply) => {
    requirePageRequest(request, sessions);
    const { name, args } = asCommandRequest(request.body);
    try {
      return { ok: true, result: (await options.execute(name, args)) ?? null };
    } catch (err) {
      return sendError(
        reply,
        CoterieError.from(err, 'INTERNAL', (text) => `internal error: ${text}`),
      );
    }
  });

  app.route({
    method: 'GET',
    url: UI_PATHS.events,
    // The handshake carries the cookie and the Origin: a foreign page cannot open the stream.
    // Or the control token, as the CLI's --follow and --watch send it: a browser cannot put an
    // Authorization header on a WebSocket handshake, and no page knows the token.
    preValidation: async (request) => {
      if (holdsControlToken(request)) return;
      checkSameOrigin(request);
      requireSession(request, sessions);
    },
    handler: async () => {
      throw new CoterieError('BAD_REQUEST', `${UI_PATHS.events} is a WebSocket`);
    },
    wsHandler: (socket, request) => {
      const since = Number((request.query as { since?: string }).since ?? -1);
      stream.accept(socket, since);
    },
  });

  return {
    app,
    setPort(port: number) {
      hosts = ownHosts(port);
    },
  };
}

/** Starts the web UI on 127.0.0.1; resolves once it listens. */
export async function startUiServer(options: UiServerOptions): Promise<UiServer> {
  const sessions = new UiSessions();
  const log = new EventLog();
  const stream = new EventStream(log, options.execute, options.transfers);
  const unsubscribe = options.subscribe((e) => stream.publish(e));
  const { app, setPort } = await buildApp(options, sessions, stream);
  await app.listen({ host: UI_HOST, port: options.port ?? 0 });
  const port = (app.server.address() as { port: number }).port;
  setPort(port);
  options.log?.info({ port }, 'web UI listening');
  return {
    host: UI_HOST,
    port,
    loginUrl: () => `http://${UI_HOST}:${port}${UI_PATHS.login}?t=${sessions.issueTicket()}`,
    stop: async () => {
      unsubscribe();
      stream.close();
      // fastify closes idle keep-alive connections itself, but waits for requests in flight (a
      // body that never ends) and for every page socket's closing handshake (ws gives a page
      // that never answers 30 s): after a short grace, whatever is still open is cut.
      const timer = setTimeout(() => {
        app.server.closeAllConnections();
        for (const socket of app.websocketServer.clients) socket.terminate();
      }, PEER_DEFAULTS.uiCloseGraceMs);
      try {
        await app.close();
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
