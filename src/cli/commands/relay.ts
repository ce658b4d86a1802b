import type { Command } from 'commander';
import pino from 'pino';
import { formatHostPort } from '../../protocol/addresses.js';
import { CoterieError } from '../../protocol/errors.js';
import { RELAY_DEFAULTS, startRelay, whoamiAuthenticator } from '../../relay/index.js';
import { layerSettings } from '../daemon-config.js';
import { parseLogLevel } from '../flags.js';
import { addRelayLimitOptions, type RelayLimitFlags, relayLimits } from '../relay-flags.js';

interface RelayFlags extends RelayLimitFlags {
  host?: string;
  port?: string;
  tracker?: string;
  logLevel?: string;
}

/**
 * `coterie relay`: a relay on its own (issue 19), for a site that wants one
 * apart from its trackers. Tokens are checked with the tracker's
 * /v1/whoami; list it to peers with the trackers' --extra-relay.
 */
export function registerRelayCommand(program: Command): void {
  const command = addRelayLimitOptions(
    program
      .command('relay')
      .description('start a relay: splices circuits to peers behind NAT (it sees ciphertext only)')
      .option('--host <host>', `address to listen on (default ${RELAY_DEFAULTS.host})`)
      .option('--port <port>', 'port, 0 for any free one (default 7072)')
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
      const relay = await startRelay({
        ...relayLimits(flags),
        host: flags.host ?? RELAY_DEFAULTS.host,
        port,
        authenticate: whoamiAuthenticator(flags.tracker),
        logger,
      });
      process.stdout.write(`coterie relay listening on ${formatHostPort(relay.host, relay.port)}\n`);
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
