import type { FastifyReply, FastifyRequest } from 'fastify';
import { CoterieError } from '../../protocol/errors.js';
import { UI_CSRF_HEADER, UI_SESSION_COOKIE } from '../../protocol/ui.js';
import { sameSecret, type UiSession, type UiSessions } from './sessions.js';

/**
 * The checks every request to the web UI passes, each refusing with a coded
 * error and changing nothing:
 * - Host names the UI's own loopback address: a DNS-rebound name
 *   (evil.example resolving to 127.0.0.1) is refused before any route runs;
 * - state changes come from the UI's own page: Origin is its own origin and
 *   Sec-Fetch-Site (when the browser sends it) is same-origin;
 * - a session cookie, and for state changes that session's CSRF token.
 */

/** The Host values of the UI listening on 127.0.0.1:port. */
export function ownHosts(port: number): Set<string> {
  return new Set([`127.0.0.1:${port}`, `localhost:${port}`]);
}

export function checkHost(request: FastifyRequest, hosts: Set<string>): void {
  const host = request.headers.host;
  if (host === undefined || !hosts.has(host.toLowerCase())) {
    throw new CoterieError('FORBIDDEN', `the web UI answers only at ${[...hosts][0]}, not '${host ?? ''}'`);
  }
}

/** Refuses a request that a page of another origin could have sent. */
export function checkSameOrigin(request: FastifyRequest): void {
  const origin = request.headers.origin;
  if (origin !== `http://${request.headers.host?.toLowerCase()}`) {
    throw new CoterieError('FORBIDDEN', `a request from origin '${origin ?? '(none)'}' is not the UI's own`);
  }
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin') {
    throw new CoterieError('FORBIDDEN', `a ${site} request is not the UI's own`);
  }
}

export function requireSession(request: FastifyRequest, sessions: UiSessions): UiSession {
  const session = sessions.find(request.cookies[UI_SESSION_COOKIE]);
  if (session === undefined) {
    throw new CoterieError('UNAUTHENTICATED', "no web UI session: open the link 'coterie ui' prints");
  }
  return session;
}

export function checkCsrf(request: FastifyRequest, session: UiSession): void {
  const given = request.headers[UI_CSRF_HEADER];
  if (typeof given !== 'string' || !sameSecret(given, session.csrf)) {
    throw new CoterieError('FORBIDDEN', 'missing or stale CSRF token: reload the page');
  }
}

/** The session of a state-changing request from the UI's page (all three checks). */
export function requirePageRequest(request: FastifyRequest, sessions: UiSessions): UiSession {
  checkSameOrigin(request);
  const session = requireSession(request, sessions);
  checkCsrf(request, session);
  return session;
}

export function sendError(reply: FastifyReply, err: CoterieError): FastifyReply {
  return reply.code(err.status).send({ ok: false, ...err.toJSON() });
}
