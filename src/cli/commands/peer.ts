import { join, resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { pino } from 'pino';
import { ensurePrivateFile, restrictUmask } from '../../os/private-files.js';
import { openRotatingLog } from '../../os/rotating-log.js';
import { ensureDataDir, resolveDataDir } from '../../peer/client.js';
import { PEER_DEFAULTS, parseTrackerUrls, sessionHeartbeat, startPeerDaemon } from '../../peer/index.js';
import { formatHostPort } from '../../protocol/addresses.js';
import { CoterieError } from '../../protocol/errors.js';
import { parseRate } from '../../protocol/rates.js';
import { layerSettings } from '../daemon-config.js';
import { integerFlag, parseAdvertisedHost, parseLogLevel } from '../flags.js';
import { runShell } from '../shell.js';
import { guardShutdown, shutdownTimeoutSeconds } from '../shutdown.js';

interface PeerFlags {
  dataDir?: string;
  tracker?: string;
  host: string;
  port: string;
  advertise?: string;
  uploadLimitKib?: string;
  uploadLimit?: string;
  downloadLimit?: string;
  exemptLocal?: boolean;
  punch: boolean;
  wallClockStart?: string;
  shell: boolean;
  logLevel: string;
  trackerHeartbeatMs?: string;
  trackerCa?: string;
  uiPort: string;
  ui: boolean;
  storageDir?: string;
  zone?: string;
  scrubMibS?: string;
  scrubPauseMs?: string;
  logMaxMib: string;
  logKeep: string;
  shutdownTimeout?: string;
  alpha?: string;
  beta?: string;
  portMapping: boolean;
  portMappingLease?: string;
}

const DEFAULT_TRACKER = PEER_DEFAULTS.trackerUrlDefault;

function parsePort(value: string, flag = '--port'): number {
  const port = Number(value);
  if (!/^[0-9]{1,5}$/.test(value) || port > 65535) {
    throw new CoterieError('USAGE', `invalid ${flag} '${value}': use 0 to 65535 (0 picks a free port)`);
  }
  return port;
}

function parseUploadLimit(flags: PeerFlags): number | undefined {
  if (flags.uploadLimit !== undefined) return parseRate(flags.uploadLimit, '--upload-limit');
  const value = flags.uploadLimitKib;
  if (value === undefined) return undefined;
  const kib = Number(value);
  if (!Number.isFinite(kib) || kib <= 0) {
    throw new CoterieError('USAGE', `invalid --upload-limit-kib '${value}': a positive number of KiB/s`);
  }
  return kib * 1024;
}

/** A wall clock that starts at `start` (ms since the epoch) and runs at the real pace: tests cross a schedule boundary with it. */
function shiftedWallClock(start: string | undefined): (() => number) | undefined {
  if (start === undefined) return undefined;
  const at = Number(start);
  if (!Number.isSafeInteger(at) || at < 0) {
    throw new CoterieError('USAGE', `invalid --wall-clock-start '${start}': milliseconds since 1970`);
  }
  const t0 = performance.now();
  return () => at + (performance.now() - t0);
}

function parseHeartbeat(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = Number(value);
  if (!Number.isInteger(ms) || ms < 20 || ms > 600_000) {
    throw new CoterieError('USAGE', `invalid --tracker-heartbeat-ms '${value}': 20 to 600000 milliseconds`);
  }
  return ms;
}

/** The variables that kept their older names; every other flag's is COTERIE_PEER_<FLAG>. */
const PEER_ENV_NAMES = {
  'data-dir': 'COTERIE_DATA_DIR',
  tracker: 'COTERIE_TRACKER',
  'tracker-ca': 'COTERIE_TRACKER_CA',
  shell: 'COTERIE_PEER_NO_SHELL',
};

function parseScrubRate(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const mib = Number(value);
  if (!Number.isFinite(mib) || mib <= 0) {
    throw new CoterieError('USAGE', `invalid --scrub-mib-s '${value}': a positive number of MiB/s`);
  }
  return Math.round(mib * 1024 * 1024);
}

/** --alpha / --beta: a weight of the selection rule α·score − β·load/threshold, 0 to 100. */
function parseWeight(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const w = Number(value);
  if (value.trim() === '' || !Number.isFinite(w) || w < 0 || w > 100) {
    throw new CoterieError('USAGE', `invalid ${flag} '${value.slice(0, 80)}': a number from 0 to 100`);
  }
  return w;
}

function parseZone(value: string | undefined): string | undefined {
  if (value !== undefined && !/^[A-Za-z0-9_.:-]{0,64}$/.test(value)) {
    throw new CoterieError(
      'USAGE',
      `invalid --zone '${value.slice(0, 80)}': up to 64 of A-Z a-z 0-9 _ . : -`,
    );
  }
  return value;
}

export function registerPeerCommand(program: Command): void {
  const command = program
    .command('peer')
    .description("start the user's peer daemon (and its shell on a terminal)")
    .option('--data-dir <dir>', 'where the identity, state and daemon.json live (default: per user)')
    .option('--tracker <urls>', `tracker URL(s), comma-separated (default: ${DEFAULT_TRACKER})`)
    .option('--host <host>', 'address the piece server listens on', '127.0.0.1')
    .option('--port <port>', 'port of the piece server (0 picks a free one)', '0')
    .option('--advertise <host>', 'address announced to other peers when it differs from --host')
    .option('--upload-limit <rate>', 'upload limit over all connections: 20MiB/s, 512KiB/s (default: none)')
    .option('--download-limit <rate>', 'download limit over all connections: 50MiB/s (default: none)')
    .option(
      '--exempt-local',
      'no limits for peers on the local network (loopback, 10/8, 172.16/12, 192.168/16, link-local)',
    )
    .option('--no-punch', 'no hole punching over UDP: seeders behind NAT are reached through relays only')
    .option('--upload-limit-kib <n>', 'upload limit in KiB/s (older form of --upload-limit)')
    .addOption(
      new Option('--wall-clock-start <ms>', "the schedule's wall clock starts here (tests only)").hideHelp(),
    )
    .option(
      '--tracker-heartbeat-ms <ms>',
      'leave a tracker silent this long for the next one of the cluster (default 5000)',
    )
    .option('--tracker-ca <file>', 'trust this CA certificate (PEM) for https:// trackers')
    .option('--ui-port <port>', 'port of the web UI on 127.0.0.1 (0 picks a free one; see coterie ui)', '0')
    .option('--no-ui', 'no web UI')
    .option(
      '--no-port-mapping',
      'do not ask the home router (PCP, NAT-PMP, UPnP IGD) to forward the piece server',
    )
    .option('--port-mapping-lease <seconds>', "the port mapping's lease, renewed at half (default 7200)")
    .option('--storage-dir <dir>', 'where replicas kept for groups live (default: DIR/storage)')
    .option('--zone <name>', "the zone this peer's storage offers name (a room, a house, a rack)")
    .option('--scrub-mib-s <n>', 'how fast held replicas are re-hashed, MiB/s (default 20)')
    .addOption(new Option('--scrub-pause-ms <ms>', 'rest between two scrub passes (tests only)').hideHelp())
    .option('--no-shell', 'no interactive shell, even on a terminal')
    .option('--log-level <level>', 'log level of DIR/peer.log', 'info')
    .option(
      '--log-max-mib <n>',
      'peer.log becomes peer.log.1 past this size; 0: never (logrotate and SIGHUP)',
      '10',
    )
    .option('--log-keep <n>', 'rotated logs kept (peer.log.1 … peer.log.N)', '3')
    .option(
      '--shutdown-timeout <seconds>',
      'a graceful stop (SIGTERM, SIGINT) taking longer than this exits anyway; a second signal at once (default 10)',
    )
    .option('--alpha <w>', "weight of a seeder's score in the piece assignment rule (default 1)")
    .option('--beta <w>', "weight of a seeder's load in the piece assignment rule (default 0.5)");
  layerSettings(command, 'COTERIE_PEER', PEER_ENV_NAMES).action(async (flags: PeerFlags) => {
    const dataDir = resolveDataDir(flags.dataDir);
    const trackers = parseTrackerUrls(flags.tracker ?? process.env.COTERIE_TRACKER ?? DEFAULT_TRACKER);
    const port = parsePort(flags.port);
    const uiPort = parsePort(flags.uiPort, '--ui-port');
    const heartbeatMs = parseHeartbeat(flags.trackerHeartbeatMs);
    const logLevel = parseLogLevel(flags.logLevel);
    const zone = parseZone(flags.zone);
    const wallNow = shiftedWallClock(flags.wallClockStart);
    const uploadLimit = parseUploadLimit(flags);
    const downloadLimit =
      flags.downloadLimit === undefined ? undefined : parseRate(flags.downloadLimit, '--download-limit');
    const scrubBytesPerSec = parseScrubRate(flags.scrubMibS);
    const alpha = parseWeight('--alpha', flags.alpha);
    const beta = parseWeight('--beta', flags.beta);
    const mappingLeaseSec = integerFlag(flags.portMappingLease, '--port-mapping-lease', 2, 86_400);
    const advertiseHost =
      flags.advertise === undefined ? undefined : parseAdvertisedHost(flags.advertise, '--advertise');
    // This process is the daemon: whatever it or a library creates is its own (see restrictUmask).
    restrictUmask();
    // Made here (0700) because peer.log opens in it before the daemon starts.
    const tightened = ensureDataDir(dataDir);
    const logPath = join(dataDir, 'peer.log');
    ensurePrivateFile(logPath);
    // Written synchronously: a daemon logs a few lines a minute, and a crash's last line must land.
    // Bounded by default (10 MiB and 3 rotated files); SIGHUP reopens it after logrotate moved it.
    const logFile = openRotatingLog(logPath, {
      maxBytes: (integerFlag(flags.logMaxMib, '--log-max-mib', 0, 1_000_000) ?? 10) * 1024 * 1024,
      keep: integerFlag(flags.logKeep, '--log-keep', 1, 1000) ?? 3,
    });
    const logger = pino({ level: logLevel, base: { pid: process.pid } }, logFile);
    const reopenLog = () => {
      logFile.reopen();
      logger.info('peer.log reopened (SIGHUP)');
    };
    process.on('SIGHUP', reopenLog);
    const guard = guardShutdown({
      name: 'coterie peer',
      timeoutSeconds: shutdownTimeoutSeconds(flags.shutdownTimeout),
      beforeExit: (reason) => logger.warn({ reason }, 'exiting without finishing the shutdown'),
    });
    if (tightened.length > 0) {
      logger.warn({ tightened }, 'the data directory was open to other users: made it private');
    }
    // A crash says why in peer.log as well as on stderr: a daemon started with --no-shell may
    // have nobody reading its stderr. (A rejection nobody handled arrives here too.)
    process.once('uncaughtException', (err, origin) => {
      logger.fatal({ err, origin }, 'peer daemon crashed');
      process.stderr.write(`coterie peer crashed: ${err.stack ?? String(err)}\n`);
      process.exit(1);
    });
    // Signal handlers go in before anything is announced: a SIGTERM right after the ready
    // line must find them (the default action would kill the process without cleanup).
    let daemon: Awaited<ReturnType<typeof startPeerDaemon>> | undefined;
    let signalled = false;
    const shutdown = (signal: NodeJS.Signals) => {
      if (!guard.requested(signal)) return;
      signalled = true;
      void daemon?.stop();
    };
    process.on('SIGTERM', shutdown);
    process.on('SIGINT', shutdown);
    daemon = await startPeerDaemon({
      dataDir,
      trackers,
      host: flags.host,
      port,
      advertiseHost,
      uploadLimitBytesPerSec: uploadLimit,
      downloadLimitBytesPerSec: downloadLimit,
      exemptLocalNetwork: flags.exemptLocal === true,
      portMapping: flags.portMapping && {
        leaseSec: mappingLeaseSec ?? PEER_DEFAULTS.portMappingLeaseSec,
      },
      punch: flags.punch,
      ...(wallNow === undefined ? {} : { wallNow }),
      trackerCaFile: flags.trackerCa ?? process.env.COTERIE_TRACKER_CA,
      ui: flags.ui ? { port: uiPort } : false,
      ...(flags.storageDir === undefined ? {} : { storageDir: resolve(flags.storageDir) }),
      ...(zone === undefined ? {} : { zone }),
      ...(scrubBytesPerSec === undefined ? {} : { scrubBytesPerSec }),
      scheduler: { ...(alpha === undefined ? {} : { alpha }), ...(beta === undefined ? {} : { beta }) },
      ...(flags.scrubPauseMs === undefined
        ? {}
        : { scrubPauseMs: Math.max(10, Number(flags.scrubPauseMs) || 0) }),
      ...(heartbeatMs === undefined ? {} : sessionHeartbeat(heartbeatMs)),
      logger,
    });
    if (signalled) {
      await daemon.stop();
      return;
    }
    process.stdout.write(
      `peer ${daemon.peerId} serving on ${formatHostPort(daemon.serving.host, daemon.serving.port)} (data ${dataDir}, control ${formatHostPort('127.0.0.1', daemon.control.port)}${daemon.ui === undefined ? '' : `, ui http://${formatHostPort(daemon.ui.host, daemon.ui.port)}`})\n`,
    );
    if (flags.shell && process.stdin.isTTY && process.stdout.isTTY) {
      await runShell({ daemon, historyFile: join(dataDir, 'history') });
      await daemon.stop();
    } else {
      daemon.on('notice', (n) => logger.info({ notice: n.kind }, n.text));
    }
    await daemon.done;
    guard.finished();
    logger.flush();
    process.off('SIGTERM', shutdown);
    process.off('SIGINT', shutdown);
    process.off('SIGHUP', reopenLog);
  });
}
