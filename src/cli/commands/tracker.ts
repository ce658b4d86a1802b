import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { type Command, Option } from 'commander';
import { PRIVATE_DIR_MODE, restrictUmask } from '../../os/private-files.js';
import { CoterieError } from '../../protocol/errors.js';
import { MAX_TICKET_TTL_SECONDS } from '../../protocol/tickets.js';
import { formatTrackerAddress } from '../../protocol/tracker-url.js';
import { startTracker, TRACKER_DEFAULTS, type TrackerOptions } from '../../tracker/index.js';
import { layerSettings } from '../daemon-config.js';
import { integerFlag, parseLogLevel } from '../flags.js';
import { addRelayLimitOptions, type RelayLimitFlags, relayAddress, relayLimits } from '../relay-flags.js';
import { guardShutdown, shutdownTimeoutSeconds } from '../shutdown.js';
import { readTls } from '../tls-files.js';
import { loadOrCreateTrackerCertificate } from '../tracker-tls.js';
import { parseTrustProxy } from '../trust-proxy.js';

interface TrackerFlags extends RelayLimitFlags {
  relay?: boolean;
  rebalance?: boolean;
  relayHost?: string;
  relayPort?: string;
  relayPublicHost?: string;
  extraRelay?: string[];
  host?: string;
  port?: string;
  dataDir?: string;
  store?: string;
  keyFile?: string;
  tlsCert?: string;
  tlsKey?: string;
  heartbeatIntervalMs?: string;
  heartbeatTimeoutMs?: string;
  ticketTtlMinutes?: string;
  ticketTtlSeconds?: string;
  logLevel?: string;
  scryptLogN?: string;
  publicUrl?: string;
  clusterHeartbeatMs?: string;
  clusterDeadAfterMs?: string;
  readCacheMs?: string;
  presenceGraceMs?: string;
  storageGraceMs?: string;
  storageFetchStallMs?: string;
  gcGraceMs?: string;
  gcOrphanGraceMs?: string;
  gcIntervalMs?: string;
  requireSyncStandby?: boolean;
  insecureHttp?: boolean;
  trustProxy?: string;
  accountCreationsPerAddress?: string;
  shutdownTimeout?: string;
}

/** flags > COTERIE_* environment > config file (../daemon-config.ts, which also fills flags) > defaults. */
function pick(flag: string | undefined, env: string): string | undefined {
  return flag ?? (process.env[env] === '' ? undefined : process.env[env]);
}

const integer = integerFlag;

/** The URL peers are told to reach this tracker at (the cluster lists it): http(s), origin only. */
function publicUrl(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new CoterieError(
      'USAGE',
      `invalid --public-url '${value}': use http://HOST:PORT or https://HOST:PORT`,
    );
  }
  return url.origin;
}

/** --ticket-ttl-seconds, or --ticket-ttl-minutes (kept from before), never both. */
function ticketTtlSeconds(flags: TrackerFlags): number | undefined {
  if (flags.ticketTtlSeconds !== undefined && flags.ticketTtlMinutes !== undefined) {
    throw new CoterieError('USAGE', 'give --ticket-ttl-seconds or --ticket-ttl-minutes, not both');
  }
  const minutes = integer(flags.ticketTtlMinutes, '--ticket-ttl-minutes', 1, MAX_TICKET_TTL_SECONDS / 60);
  if (minutes !== undefined) return minutes * 60;
  return integer(flags.ticketTtlSeconds, '--ticket-ttl-seconds', 1, MAX_TICKET_TTL_SECONDS);
}

export function resolveTrackerOptions(flags: TrackerFlags): TrackerOptions {
  const certPath = pick(flags.tlsCert, 'COTERIE_TLS_CERT');
  const keyPath = pick(flags.tlsKey, 'COTERIE_TLS_KEY');
  if ((certPath === undefined) !== (keyPath === undefined)) {
    throw new CoterieError('USAGE', 'give both --tls-cert and --tls-key, or neither');
  }
  if (flags.insecureHttp === true && certPath !== undefined) {
    throw new CoterieError('USAGE', 'give --tls-cert/--tls-key or --insecure-http, not both');
  }
  const logLevel = parseLogLevel(pick(flags.logLevel, 'COTERIE_LOG_LEVEL') ?? TRACKER_DEFAULTS.logLevel);
  const dataDir = pick(flags.dataDir, 'COTERIE_TRACKER_DATA_DIR') ?? join(homedir(), '.coterie', 'tracker');
  return {
    host: pick(flags.host, 'COTERIE_TRACKER_HOST') ?? TRACKER_DEFAULTS.host,
    port: integer(pick(flags.port, 'COTERIE_TRACKER_PORT'), '--port', 0, 65535) ?? TRACKER_DEFAULTS.port,
    dataDir,
    store: pick(flags.store, 'COTERIE_TRACKER_STORE'),
    requireSyncStandby:
      flags.requireSyncStandby === true || pick(undefined, 'COTERIE_TRACKER_REQUIRE_SYNC_STANDBY') === '1',
    keyFile: pick(flags.keyFile, 'COTERIE_TRACKER_KEY_FILE'),
    tls: certPath !== undefined && keyPath !== undefined ? readTls(certPath, keyPath) : undefined,
    heartbeatIntervalMs: integer(flags.heartbeatIntervalMs, '--heartbeat-interval-ms', 10, 3_600_000),
    heartbeatTimeoutMs: integer(flags.heartbeatTimeoutMs, '--heartbeat-timeout-ms', 10, 3_600_000),
    ticketTtlSeconds: ticketTtlSeconds(flags),
    scryptLogN: integer(flags.scryptLogN, '--scrypt-log-n', 10, 20),
    publicUrl: publicUrl(pick(flags.publicUrl, 'COTERIE_TRACKER_PUBLIC_URL')),
    clusterHeartbeatMs: integer(flags.clusterHeartbeatMs, '--cluster-heartbeat-ms', 10, 600_000),
    clusterDeadAfterMs: integer(flags.clusterDeadAfterMs, '--cluster-dead-after-ms', 20, 3_600_000),
    readCacheMs: integer(flags.readCacheMs, '--read-cache-ms', 0, 3_600_000),
    presenceGraceMs: integer(flags.presenceGraceMs, '--presence-grace-ms', 0, 3_600_000),
    storageGraceMs: integer(flags.storageGraceMs, '--storage-grace-ms', 0, 7 * 24 * 3_600_000),
    storageFetchStallMs: integer(
      flags.storageFetchStallMs,
      '--storage-fetch-stall-ms',
      1000,
      7 * 24 * 3_600_000,
    ),
    gcGraceMs: integer(flags.gcGraceMs, '--gc-grace-ms', 0, 30 * 24 * 3_600_000),
    gcOrphanGraceMs: integer(flags.gcOrphanGraceMs, '--gc-orphan-grace-ms', 0, 30 * 24 * 3_600_000),
    gcIntervalMs: integer(flags.gcIntervalMs, '--gc-interval-ms', 100, 3_600_000),
    logLevel,
    trustProxy: parseTrustProxy(flags.trustProxy),
    accountCreationsPerAddress: integer(
      flags.accountCreationsPerAddress,
      '--account-creations-per-address',
      1,
      1_000_000_000,
    ),
    relay: flags.relay !== false,
    rebalance: flags.rebalance !== false,
    relayHost: flags.relayHost,
    relayPort: integer(flags.relayPort, '--relay-port', 0, 65535),
    relayPublicHost: flags.relayPublicHost,
    relayLimits: relayLimits(flags),
    extraRelays: (flags.extraRelay ?? []).map((r) => relayAddress(r, '--extra-relay')),
  };
}

/**
 * TLS unless told otherwise: without --tls-cert, the certificate kept in the
 * data directory (made at the first start); --insecure-http serves plain HTTP
 * and says so on stderr.
 */
async function withDefaultTls(options: TrackerOptions, insecureHttp: boolean): Promise<TrackerOptions> {
  if (options.tls !== undefined) return options;
  if (insecureHttp) {
    process.stderr.write(
      'coterie tracker: --insecure-http: plain HTTP, passwords and session tokens cross the network readable\n',
    );
    return options;
  }
  mkdirSync(options.dataDir, { recursive: true, mode: PRIVATE_DIR_MODE });
  const { cert, key } = await loadOrCreateTrackerCertificate(
    options.dataDir,
    options.host ?? TRACKER_DEFAULTS.host,
  );
  return { ...options, tls: { cert, key } };
}

/** The variables that kept their older names; every other flag's is COTERIE_TRACKER_<FLAG>. */
const TRACKER_ENV_NAMES = {
  'tls-cert': 'COTERIE_TLS_CERT',
  'tls-key': 'COTERIE_TLS_KEY',
  'log-level': 'COTERIE_LOG_LEVEL',
};

export function registerTrackerCommand(program: Command): void {
  const command = program
    .command('tracker')
    .description('start a tracker: accounts, groups, file registry, tickets and presence')
    .option('--host <host>', `address to listen on (default ${TRACKER_DEFAULTS.host})`)
    .option('--port <port>', `port, 0 for any free one (default ${TRACKER_DEFAULTS.port})`)
    .option('--data-dir <dir>', 'data directory (default ~/.coterie/tracker)')
    .option(
      '--store <path|url>',
      'SQLite file (default <data-dir>/tracker.db) or postgres:// URL; several hosts (postgres://u@h1:5432,h2:5432/db) and the tracker follows the primary',
    )
    .option(
      '--require-sync-standby',
      'PostgreSQL: refuse to start (or to use a primary) unless commits wait for a synchronous standby',
    )
    .option(
      '--key-file <file>',
      "key that wraps the signing keys in the store, the same for a cluster's trackers (default <data-dir>/tracker.key)",
    )
    .option(
      '--tls-cert <file>',
      'PEM certificate: serve HTTPS and WSS with it (with --tls-key); default: one made at first start in <data-dir>',
    )
    .option('--tls-key <file>', 'PEM private key for --tls-cert')
    .option(
      '--insecure-http',
      'serve plain HTTP: passwords and tokens cross the network readable (tests only)',
    )
    .option(
      '--heartbeat-interval-ms <ms>',
      `ping connected peers this often (default ${TRACKER_DEFAULTS.heartbeatIntervalMs})`,
    )
    .option(
      '--heartbeat-timeout-ms <ms>',
      `a peer without pong for this long is gone (default ${TRACKER_DEFAULTS.heartbeatTimeoutMs})`,
    )
    .option(
      '--ticket-ttl-seconds <n>',
      `default ticket lifetime, 1-${MAX_TICKET_TTL_SECONDS} (default ${TRACKER_DEFAULTS.ticketTtlSeconds}); peers renew before it ends`,
    )
    .option('--ticket-ttl-minutes <n>', 'the same in minutes, 1-60')
    .option('--log-level <level>', `JSON log level on stderr (default ${TRACKER_DEFAULTS.logLevel})`)
    .option(
      '--public-url <url>',
      'URL peers reach this tracker at, listed in the cluster (default: the listening URL)',
    )
    .option(
      '--cluster-heartbeat-ms <ms>',
      `write this tracker's cluster heartbeat this often (default ${TRACKER_DEFAULTS.clusterHeartbeatMs})`,
    )
    .option(
      '--cluster-dead-after-ms <ms>',
      `a tracker without heartbeat this long leaves the cluster (default ${TRACKER_DEFAULTS.clusterDeadAfterMs})`,
    )
    .option(
      '--read-cache-ms <ms>',
      `keep hot lookups (members, subscribers, seeders) at most this long; events from this tracker and the cluster drop them sooner, so this bounds staleness only if an event is lost (default ${TRACKER_DEFAULTS.readCacheMs}; 0 = no cache)`,
    )
    .option(
      '--presence-grace-ms <ms>',
      `seeders of a dead tracker stay listed this long for them to reconnect elsewhere (default ${TRACKER_DEFAULTS.presenceGraceMs})`,
    )
    .option(
      '--storage-grace-ms <ms>',
      `a storage peer away longer than this stops counting and its replicas are repaired elsewhere (default ${TRACKER_DEFAULTS.storageGraceMs})`,
    )
    .option(
      '--storage-fetch-stall-ms <ms>',
      `a replica fetch its storage peer reports no progress on for this long is placed elsewhere (default ${TRACKER_DEFAULTS.storageFetchStallMs})`,
    )
    .option(
      '--gc-grace-ms <ms>',
      `a file listed in no group is removed with its manifest pages this long after (default ${TRACKER_DEFAULTS.gcGraceMs}: the longest ticket lifetime; shorter may break downloads under way)`,
    )
    .option(
      '--gc-orphan-grace-ms <ms>',
      `a manifest page no file refers to is removed this long after its last upload (default ${TRACKER_DEFAULTS.gcOrphanGraceMs})`,
    )
    .option(
      '--gc-interval-ms <ms>',
      `how often the file GC runs, on the one tracker of a cluster holding its lease (default ${TRACKER_DEFAULTS.gcIntervalMs})`,
    )
    .option(
      '--trust-proxy <proxies>',
      'behind a reverse proxy: its addresses/CIDRs (or a hop count) whose X-Forwarded-For names the client; without it the header is ignored',
    )
    .option(
      '--account-creations-per-address <n>',
      `accounts one client address may create per 10 minutes (default ${TRACKER_DEFAULTS.accountCreationsPerAddress}); each costs a 32 MiB scrypt`,
    )
    .option(
      '--shutdown-timeout <seconds>',
      'a graceful stop (SIGTERM, SIGINT) taking longer than this exits anyway; a second signal at once (default 10)',
    )
    .option('--no-relay', 'run no relay inside this tracker (by default one does, for peers behind NAT)')
    .option(
      '--no-rebalance',
      "never ask this tracker's sessions to move to less loaded trackers of the cluster",
    )
    .option('--relay-host <host>', 'address the built-in relay listens on (default: --host)')
    .option('--relay-port <port>', 'port of the built-in relay, 0 for any free one (default 0)')
    .option(
      '--relay-public-host <host>',
      "host peers reach the built-in relay at (default: --public-url's host)",
    )
    .option(
      '--extra-relay <host:port#sha256=fp...>',
      "standalone relays (coterie relay, which prints this) to list in the cluster beside the trackers' own",
    )
    .addOption(new Option('--scrypt-log-n <n>', 'password hashing cost (tests only)').hideHelp());
  addRelayLimitOptions(command);
  layerSettings(command, 'COTERIE_TRACKER', TRACKER_ENV_NAMES).action(async (flags: TrackerFlags) => {
    const options = await withDefaultTls(resolveTrackerOptions(flags), flags.insecureHttp === true);
    const guard = guardShutdown({
      name: 'coterie tracker',
      timeoutSeconds: shutdownTimeoutSeconds(flags.shutdownTimeout),
    });
    // This process is the tracker: whatever it or a library creates is its own (see restrictUmask).
    restrictUmask();
    // Signals are handled from before the listening line is printed: whoever reads that line may stop us at once.
    let stopRequested: string | undefined;
    let onStop: (why: string) => void = (why) => {
      if (guard.requested(why)) stopRequested = why;
    };
    const sigterm = () => onStop('SIGTERM');
    const sigint = () => onStop('SIGINT');
    process.on('SIGTERM', sigterm);
    process.on('SIGINT', sigint);
    let rl: ReturnType<typeof createInterface> | undefined;
    try {
      const tracker = await startTracker({
        ...options,
        // Before the listening line: every store host answers as a standby, and /readyz says so.
        onWaitingForStore: (url, reason) =>
          process.stdout.write(
            `coterie tracker waiting for the store's primary (${reason}); answering /readyz on ${url}\n`,
          ),
      });
      const printed = formatTrackerAddress({
        origin: tracker.url,
        ...(tracker.fingerprint === undefined ? {} : { fingerprint: tracker.fingerprint }),
      });
      process.stdout.write(`coterie tracker ${tracker.trackerId} listening on ${printed}\n`);
      if (tracker.fingerprint !== undefined) {
        process.stdout.write(
          `certificate sha256 ${tracker.fingerprint}: give peers the URL above (with its #sha256=) so they pin it\n`,
        );
      }
      await new Promise<void>((resolve) => {
        const stop = (why: string) => {
          rl?.close();
          process.stdout.write(`coterie tracker: ${why}, shutting down\n`);
          tracker.close().then(
            () => {
              guard.finished();
              resolve();
            },
            (err: unknown) => {
              guard.finished();
              process.stderr.write(`coterie tracker: shutdown failed: ${(err as Error).message}\n`);
              process.exitCode = 1;
              resolve();
            },
          );
        };
        onStop = (why: string) => {
          if (guard.requested(why)) stop(why);
        };
        if (stopRequested !== undefined) stop(stopRequested);
        // On a terminal, typing `quit` stops the tracker too (as the original tracker's console did).
        if (process.stdin.isTTY) {
          rl = createInterface({ input: process.stdin });
          rl.on('line', (line) => {
            const cmd = line.trim();
            if (cmd === 'quit' || cmd === 'exit') onStop('quit');
            else if (cmd !== '') process.stdout.write("type 'quit' to stop the tracker\n");
          });
        }
      });
    } finally {
      process.off('SIGTERM', sigterm);
      process.off('SIGINT', sigint);
    }
    process.stdin.unref?.();
  });
}
