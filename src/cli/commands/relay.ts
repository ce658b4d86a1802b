import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import pino from 'pino';
import { PRIVATE_DIR_MODE } from '../../os/private-files.js';
import { formatHostPort } from '../../protocol/addresses.js';
import { CoterieError } from '../../protocol/errors.js';
import { formatRelayEndpoint } from '../../protocol/relay.js';
import { RELAY_DEFAULTS, startRelay, whoamiAuthenticator } from '../../relay/index.js';
import { layerSettings } from '../daemon-config.js';
import { parseLogLevel } from '../flags.js';
import { addRelayLimitOptions, type RelayLimitFlags, relayLimits } from '../relay-flags.js';
import { readTls } from '../tls-files.js';
import { loadOrCreateTrackerCertificate } from '../tracker-tls.js';

interface RelayFlags extends RelayLimitFlags {
  host?: string;
  port?: string;
  publicHost?: string;
  tracker?: string;
  dataDir?: string;
  tlsCert?: string;
  tlsKey?: string;
  logLevel?: string;
}

/**
 * `coterie relay`: a relay on its own (issue 19), for a site that wants one
 * apart from its trackers. Tokens are checked with the tracker's
 * /v1/whoami. It serves TLS with a certificate made at its first start and
 * kept in its data directory, as a tracker's is, and prints
 * `host:port#sha256=…`: list that to peers with the trackers' --extra-relay,
 * and they pin it.
 */
export function registerRelayCommand(program: Command): void {
  const command = addRelayLimitOptions(
    program
      .command('relay')
      .description('start a relay: splices circuits to peers behind NAT (it sees ciphertext only)')
      .option('--host <host>', `address to listen on (default ${RELAY_DEFAULTS.host})`)
      .option('--port <port>', 'port, 0 for any free one (default 7072)')
      .option('--public-host <host>', 'the host peers reach it at, as printed (default --host)')
      .option(
        '--data-dir <dir>',
        'where its TLS certificate is kept (tls-cert.pem, tls-key.pem; made at first start; default ~/.coterie/relay)',
      )
      .option('--tls-cert <file>', "an operator's PEM certificate to serve instead (with --tls-key)")
      .option('--tls-key <file>', 'its PEM private key')
      .option(
        '--tracker <url>',
        'the tracker whose sessions may use this relay (its /v1/whoami checks tokens)',
      )
      .option('--log-level <level>', 'JSON log level on stderr (default info)'),
  );
  layerSettings(command, 'COTERIE_RELAY', { 'log-level': 'COTERIE_LOG_LEVEL' }).action(
    async (flags: RelayFlags) => {
      if (flags.tracker === undefined) {
        throw new CoterieError('USAGE', '--tracker <url> is needed: the relay checks session tokens with it');
      }
      const port = Number(flags.port ?? 7072);
      if (!Number.isInteger(port) || port < 0 || port > 65535) {
        throw new CoterieError('USAGE', `--port must be 0 … 65535, not '${flags.port}'`);
      }
      const logger = pino(
        { level: parseLogLevel(flags.logLevel ?? 'info'), base: { service: 'relay' } },
        pino.destination(2),
      );
      const host = flags.host ?? RELAY_DEFAULTS.host;
      if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined)) {
        throw new CoterieError('USAGE', 'give both --tls-cert and --tls-key, or neither');
      }
      // The fingerprint printed (and pinned by peers) is the served certificate's, whichever it is.
      const { cert, key } =
        flags.tlsCert !== undefined && flags.tlsKey !== undefined
          ? readTls(flags.tlsCert, flags.tlsKey)
          : await ownCertificate(flags.dataDir, host);
      const relay = await startRelay({
        ...relayLimits(flags),
        tls: { cert, key },
        host,
        port,
        authenticate: whoamiAuthenticator(flags.tracker),
        logger,
      });
      const listed = formatRelayEndpoint({
        host: flags.publicHost ?? relay.host,
        port: relay.port,
        fingerprint: relay.fingerprint,
      });
      process.stdout.write(
        `coterie relay listening on ${formatHostPort(relay.host, relay.port)}\n` +
          `list it to peers with: coterie tracker --extra-relay ${listed}\n`,
      );
      await new Promise<void>((resolve) => {
        const stop = (why: string) => {
          process.stdout.write(`coterie relay: ${why}, shutting down\n`);
          relay.close().then(resolve, resolve);
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
    },
  );
}

/** The certificate made at the first start and kept in the data directory. */
async function ownCertificate(dir: string | undefined, host: string) {
  const dataDir = dir ?? join(homedir(), '.coterie', 'relay');
  mkdirSync(dataDir, { recursive: true, mode: PRIVATE_DIR_MODE });
  return loadOrCreateTrackerCertificate(dataDir, host, 'coterie relay');
}
