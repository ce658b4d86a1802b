// The web UI's paths and answers, shared by the daemon's UI server, `coterie ui` and the page.
/**
 * The web UI's HTTP surface (the page in web/ imports these names, so the
 * server and the page cannot drift apart). Every command goes through
 * POST UI_PATHS.command with the same {name, args} as the control API.
 */
export const UI_PATHS = {
  /** POST, `Authorization: Bearer <control token>`: a one-time login link (for `coterie ui`). */
  ticket: '/auth/ticket',
  /** GET ?t=TICKET: trades the ticket for the session cookie, then redirects to the page. */
  login: '/login',
  /** POST: ends this browser's session. */
  logout: '/auth/logout',
  /** GET: {csrf, peerId} for a logged-in page, 401 otherwise. */
  session: '/api/session',
  /** POST {name, args}: runs one command of the control API. */
  command: '/api/command',
  /** WebSocket ?since=SEQ: the event stream (UiFrame per message). */
  events: '/api/events',
} as const;

export const UI_SESSION_COOKIE = 'coterie_ui';
export const UI_CSRF_HEADER = 'x-coterie-csrf';

export interface UiSessionInfo {
  csrf: string;
  peerId: string;
}

export interface TicketAnswer {
  url: string;
  expiresInMs: number;
}
