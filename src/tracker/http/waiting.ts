import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { bracketHost } from '../../protocol/addresses.js';
import type { Health } from '../../protocol/api.js';
import { CoterieError } from '../../protocol/errors.js';
import { formatTrackerAddress, selfSignedFingerprint } from '../../protocol/tracker-url.js';

/**
 * What a tracker answers while its store has no primary yet at start: every
 * host of a multi-host `--store` URL answers as a standby (a failover under
 * way, or a URL that lists only standbys). The tracker cannot build its
 * services before a primary takes its migrations, but it should not be
 * silent either: on its own address, /healthz says it lives, /readyz and every
 * other request (WebSocket sessions included) get 503 UNAVAILABLE with why
 * and a retry hint, at once. When a primary is found the tracker closes this
 * listener and its real one takes the same port.
 */
export interface WaitingListener {
  /** Starts answering (once), saying `reason`; later calls only update the reason. */
  open(reason: string): Promise<void>;
  /** The port it listened on, if it did: the real listener takes that one (port 0 given). */
  port(): number | undefined;
  /** Stops answering and drops its connections. Idempotent. */
  close(): Promise<void>;
}

export interface WaitingListenerOptions {
  host: string;
  port: number;
  tls?: { cert: string | Buffer; key: string | Buffer } | undefined;
  trackerId: string;
  version: string;
  /** Told the listener's URL (with `#sha256=` when the certificate is self-signed) and why it waits. */
  announce?: ((url: string, reason: string) => void) | undefined;
}

/** What the retry hint says: the locator looks for the primary about once a second. */
const RETRY_AFTER_SECONDS = 1;

export function waitingListener(options: WaitingListenerOptions): WaitingListener {
  let server: ReturnType<typeof createHttpServer> | undefined;
  let port: number | undefined;
  let reason = '';

  const unavailable = () =>
    JSON.stringify(
      new CoterieError(
        'UNAVAILABLE',
        `this tracker is waiting for its store's primary (${reason}): try again in ${RETRY_AFTER_SECONDS} s`,
        { details: { retryAfterSeconds: RETRY_AFTER_SECONDS } },
      ).toJSON(),
    );
  const answer = (req: IncomingMessage, res: ServerResponse) => {
    if (req.method === 'GET' && req.url === '/healthz') {
      const health: Health = {
        status: 'ok',
        trackerId: options.trackerId,
        version: options.version,
        sessions: 0,
        store: { dialect: 'postgres' },
      };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(health));
      return;
    }
    res
      .writeHead(503, { 'content-type': 'application/json', 'retry-after': String(RETRY_AFTER_SECONDS) })
      .end(unavailable());
  };
  // A WebSocket session's upgrade gets the same 503 (the peer's client reads its body as the error).
  const refuseUpgrade = (_req: IncomingMessage, socket: Duplex) => {
    const body = unavailable();
    socket.end(
      `HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: ${RETRY_AFTER_SECONDS}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  };

  return {
    async open(why) {
      reason = why;
      if (server !== undefined) return;
      const { tls } = options;
      const s = tls === undefined ? createHttpServer(answer) : createHttpsServer(tls, answer);
      server = s;
      s.on('upgrade', refuseUpgrade);
      await new Promise<void>((resolve, reject) => {
        s.once('error', (err) =>
          reject(
            new CoterieError(
              'UNAVAILABLE',
              `cannot listen on ${options.host}:${options.port}: ${err.message}`,
              {
                cause: err,
              },
            ),
          ),
        );
        s.listen({ host: options.host, port: options.port }, resolve);
      });
      port = (s.address() as AddressInfo).port;
      const origin = `${tls === undefined ? 'http' : 'https'}://${bracketHost(options.host)}:${port}`;
      const fingerprint = tls === undefined ? undefined : selfSignedFingerprint(tls.cert);
      options.announce?.(
        formatTrackerAddress({ origin, ...(fingerprint === undefined ? {} : { fingerprint }) }),
        why,
      );
    },
    port: () => port,
    async close() {
      const s = server;
      server = undefined;
      if (s === undefined) return;
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    },
  };
}
