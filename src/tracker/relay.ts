import { isIP } from 'node:net';
import type { Logger } from 'pino';
import { createServerCertificate } from '../core/x509.js';
import { formatRelayEndpoint } from '../protocol/relay.js';
import { RELAY_DEFAULTS, type RelayLimits, type RunningRelay, startRelay } from '../relay/index.js';
import type { UsersService } from './services/users.js';

export interface TrackerRelayOptions extends Partial<RelayLimits> {
  /** Where the relay listens: the tracker's host by default, port 0 (any free one). */
  host: string;
  port?: number;
  /** The host peers reach it at (the tracker's public URL's host by default). */
  publicHost: string;
  /** The tracker's certificate and key; a tracker on plain HTTP gives none and the relay makes its own. */
  tls?: { cert: string | Buffer; key: string | Buffer };
}

/**
 * The relay inside a tracker (issue 19, on by default; --no-relay): sessions
 * are checked against the tracker's own users (tokens cached as for the API),
 * and its address, `host:port#sha256=…`, goes in the tracker's heartbeat row
 * so GET /v1/cluster lists it and peers pin it. It shows the tracker's
 * certificate (the one peers already pin through the tracker's URL); a
 * tracker without TLS (--insecure-http) gives it a new one at each start,
 * which the listing carries just the same.
 */
export async function startTrackerRelay(
  options: TrackerRelayOptions,
  users: Pick<UsersService, 'authenticate'>,
  logger: Logger,
): Promise<{ relay: RunningRelay; address: string }> {
  const tls = options.tls ?? (await createServerCertificate('coterie relay', options.host));
  const relay = await startRelay({
    ...options,
    tls,
    // Listening on every address: the reflector answers from the one peers are told.
    ...(isIP(options.publicHost) !== 0 && ['0.0.0.0', '::'].includes(options.host)
      ? { reflectHost: options.publicHost }
      : {}),
    port: options.port ?? RELAY_DEFAULTS.port,
    authenticate: async (token) => ({ userId: (await users.authenticate(token)).userId }),
    logger: logger.child({ part: 'relay' }),
  });
  return {
    relay,
    address: formatRelayEndpoint({
      host: options.publicHost,
      port: relay.port,
      fingerprint: relay.fingerprint,
    }),
  };
}
