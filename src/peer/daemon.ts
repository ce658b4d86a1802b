import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { pino } from 'pino';
import type { AnswerOf } from '../protocol/control.js';
import { CoterieError } from '../protocol/errors.js';
import { parseTrackerAddress } from '../protocol/tracker-url.js';
import { createTlsDial, loadOrCreateIdentity, type PeerIdentity, realClock } from '../wire/index.js';
import { PEER_DEFAULTS } from './config.js';
import {
  type CommandContext,
  type CommandIO,
  type ControlServer,
  createCommandContext,
  runCommand,
  startControlServer,
} from './control/index.js';
import { newControlToken, removeDaemonFile, writeDaemonFile } from './daemon-file.js';
import { ensureDataDir } from './data-dir.js';
import {
  createTransferCounters,
  type FilesService,
  type RuleWeights,
  startFilesService,
} from './files/index.js';
import { createLimits } from './limits.js';
import { acquireDataDirLock } from './lock.js';
import { createMessagingService, type MessagingService } from './messages/index.js';
import { createPeerMetrics } from './metrics.js';
import { type Notice, noticeOfEvent, type PeerEvent } from './notices.js';
import type { Reach } from './reach.js';
import { type ReachParts, startReachParts } from './reach-parts.js';
import { type StorageService, startStorage } from './storage/index.js';
import { PeerStore } from './store/index.js';
import { TrackerHttpClient } from './tracker/http-client.js';
import { TrackerPins } from './tracker/pins.js';
import { TrackerPool, type TrackerPoolOptions } from './tracker/pool.js';
import { TrackerSession } from './tracker/session.js';
import { caTrust, pinnedTrust, readTrackerCa } from './tracker/trust.js';
import type { UiServer } from './ui/index.js';

export interface PeerDaemonOptions {
  dataDir: string;
  trackers: string[];
  /** Where the piece server listens (other peers connect here). */
  host?: string;
  port?: number;
  /** Advertised address when it differs from host (e.g. 0.0.0.0 binds). */
  advertiseHost?: string;
  /** Punch holes over UDP to seeders behind NAT, and let others punch to us (default true; `--no-punch`). */
  punch?: boolean;
  /** Upload limit over all connections, bytes per second on the wire (0 or unset: none). */
  uploadLimitBytesPerSec?: number;
  /** Download limit over all connections, bytes per second on the wire (0 or unset: none). */
  downloadLimitBytesPerSec?: number;
  /** Peers on the local network (loopback, RFC 1918, link-local) go unthrottled. */
  exemptLocalNetwork?: boolean;
  /** Wall-clock milliseconds for the bandwidth schedule's slots (tests pass a shifted clock). */
  wallNow?: () => number;
  /** The piece assignment rule's α and β for this daemon's downloads (`--alpha`, `--beta`). */
  scheduler?: RuleWeights;
  pool?: TrackerPoolOptions;
  heartbeatIntervalMs?: number;
  heartbeatTimeoutMs?: number;
  /**
   * How long a tracker call keeps retrying (across the tracker list) once a
   * tracker has answered before (PEER_DEFAULTS.trackerRetryForMs).
   */
  trackerRetryForMs?: number;
  /** A PEM file of CA certificate(s) to trust for https:// trackers (self-signed or private CAs). */
  trackerCaFile?: string;
  /** The web UI on 127.0.0.1: its port (0, the default, picks a free one), or false for none. */
  /** The web UI: its port, and (benchmarks, tests) how many logins a minute it takes (default 20). */
  ui?: { port?: number; loginAttemptsPerMinute?: number } | false;
  /**
   * Ask the home router (PCP, NAT-PMP, UPnP IGD) to forward the piece server's port: on by default
   * unless the piece server listens on loopback only; false (`--no-port-mapping`) turns it off.
   */
  portMapping?: false | { leaseSec?: number; gateway?: string };
  /** Where a storage peer keeps its replicas (default DIR/storage). */
  storageDir?: string;
  /** The zone its storage offers name ('' for none). */
  zone?: string;
  /** The scrub's read rate over held replicas, bytes per second (default 20 MiB/s). */
  scrubBytesPerSec?: number;
  /** Rest between two scrub passes (default 10 min). */
  scrubPauseMs?: number;
  logger?: Logger;
}

export interface PeerDaemonEvents {
  notice: [notice: Notice];
  event: [event: PeerEvent];
  /** The daemon finished shutting down (quit, signal, stop()). */
  stopped: [];
}

export interface PeerDaemon extends EventEmitter<PeerDaemonEvents> {
  readonly peerId: string;
  readonly dataDir: string;
  readonly serving: { host: string; port: number };
  readonly control: { host: string; port: number };
  /** The web UI, unless turned off. */
  readonly ui: { host: string; port: number; loginUrl(): string } | undefined;
  /** Runs one command as the control API and the shell do. */
  execute<N extends string>(name: N, args: string[], io?: CommandIO): Promise<AnswerOf<N>>;
  /** Resolves once the daemon stopped (after quit or stop()). */
  readonly done: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts the user's peer daemon over DIR: its identity, its store, the piece
 * server and shares, the tracker session with failover, the control API;
 * writes DIR/daemon.json once all of it is ready.
 */
export async function startPeerDaemon(options: PeerDaemonOptions): Promise<PeerDaemon> {
  const { dataDir } = options;
  const log = options.logger ?? pino({ level: 'silent' });
  // Read before taking any resource: a bad CA file is a usage error, not a half-started daemon.
  const caPem = options.trackerCaFile === undefined ? undefined : readTrackerCa(options.trackerCaFile);
  const trackers = options.trackers.map(parseTrackerAddress);
  const tightened = ensureDataDir(dataDir);
  if (tightened.length > 0)
    log.warn({ tightened }, 'the data directory was open to other users: made it private');
  // The URLs' #sha256= pins, those kept from before, first use: or, with --tracker-ca, that CA.
  const pins = new TrackerPins(
    dataDir,
    new Map(
      trackers.flatMap((t) => (t.fingerprint === undefined ? [] : [[t.origin, t.fingerprint] as const])),
    ),
  );
  const trust = caPem === undefined ? pinnedTrust(pins) : caTrust(caPem);
  const releaseLock = acquireDataDirLock(dataDir);
  let store: PeerStore;
  try {
    store = new PeerStore(dataDir);
  } catch (err) {
    releaseLock();
    throw err;
  }
  const emitter = new EventEmitter<PeerDaemonEvents>();
  const notify = (kind: Notice['kind'], text: string) =>
    emitter.emit('notice', { kind, text, at: Date.now() });
  const emitEvent = (e: PeerEvent) => emitter.emit('event', e);
  const transfers = createTransferCounters();

  let identity: PeerIdentity | undefined;
  let files: FilesService | undefined;
  let reach: Reach | undefined;
  let reachParts: ReachParts | undefined;
  let storage: StorageService | undefined;
  let messaging: MessagingService | undefined;
  let control: ControlServer | undefined;
  let ui: UiServer | undefined;
  let stopping: Promise<void> | undefined;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => {
    resolveDone = r;
  });

  const pool = new TrackerPool(
    trackers.map((t) => t.origin),
    { ...options.pool, ...(caPem === undefined ? { pins } : {}) },
  );
  log.info(
    {
      config: {
        dataDir,
        trackers: pool.urls,
        host: options.host ?? PEER_DEFAULTS.pieceHostDefault,
        port: options.port ?? PEER_DEFAULTS.piecePortDefault,
        advertiseHost: options.advertiseHost,
        uploadLimitBytesPerSec: options.uploadLimitBytesPerSec,
        downloadLimitBytesPerSec: options.downloadLimitBytesPerSec,
        exemptLocalNetwork: options.exemptLocalNetwork,
      },
    },
    'peer starting',
  );
  const limits = createLimits({
    store,
    clock: realClock,
    wallNow: options.wallNow ?? Date.now,
    uploadBytesPerSec: options.uploadLimitBytesPerSec,
    downloadBytesPerSec: options.downloadLimitBytesPerSec,
    exemptLocal: options.exemptLocalNetwork ?? false,
    onSlot: (mode, slot) => log.info({ mode, slot }, 'bandwidth schedule slot'),
  });
  const getToken = () => store.getSession()?.token;
  const http = new TrackerHttpClient({
    pool,
    getToken,
    retryForMs: options.trackerRetryForMs,
    fetch: trust.fetch,
    refusal: (origin) => pins.refusal(origin),
  });
  const session = new TrackerSession({
    pool,
    getToken,
    trust,
    heartbeatIntervalMs: options.heartbeatIntervalMs,
    heartbeatTimeoutMs: options.heartbeatTimeoutMs,
    registration: () => ({
      peerId: identity!.peerId,
      addresses: reach?.addresses() ?? files!.addresses(),
      seeding: [...new Set([...files!.seedingFileIds(), ...(storage?.heldFileIds() ?? [])])],
      watching: files!.watchedFileIds(),
    }),
  });
  session.on('connected', (_w, url) => {
    log.info({ tracker: url }, 'tracker session up');
    notify('tracker', `connected to tracker ${url}`);
    emitEvent({ type: 'trackerConnected', url });
    files?.onTrackerConnected();
    storage?.onTrackerConnected();
  });
  session.on('disconnected', (url, reason) => {
    log.warn({ tracker: url, reason }, 'tracker session lost');
    notify('tracker', `lost tracker ${url} (${reason}); reconnecting`);
    emitEvent({ type: 'trackerLost', url, reason });
  });
  session.on('failover', (from, to) => {
    log.info({ from, to }, 'tracker failover');
    emitEvent({ type: 'trackerFailover', from, to });
  });
  session.on('cluster', (trackers) => log.info({ trackers: trackers.map((t) => t.url) }, 'tracker cluster'));
  /** Asks the cluster for its live trackers and picks one by their load (before connecting). */
  const learnCluster = async () => {
    try {
      const { trackers } = await http.call('cluster');
      pool.learn(trackers, { choose: true });
    } catch (err) {
      log.debug({ err: (err as Error).message }, 'cluster list not available');
    }
  };
  session.on('unauthenticated', (reason) => {
    log.warn({ reason }, 'tracker refused the session');
    store.setSession(undefined);
    notify('tracker', "the tracker ended this session: run 'login <user_id> <password>' again");
    emitEvent({ type: 'sessionEnded', reason });
  });
  session.on('messaging', (e) => {
    try {
      messaging?.onSessionMessaging(e);
    } catch (err) {
      // the store refused (closing?): nothing was acknowledged, so the tracker sends it again
      log.error({ err }, 'storing messages failed');
    }
  });
  session.on('peer_moved', (e) => files?.onPeerMoved(e));
  session.on('event', (e) => {
    files?.onSessionEvent(e);
    storage?.onSessionEvent(e);
    emitEvent({ type: 'trackerEvent', event: e });
    const n = noticeOfEvent(e, (id) => files?.describeFile(id) ?? id.slice(0, 12));
    if (n !== undefined) emitter.emit('notice', n);
  });

  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      log.info('peer stopping');
      messaging?.stop();
      await reachParts?.stop();
      limits.stop();
      session.stop();
      await storage?.stop().catch((err: unknown) => log.error({ err }, 'stopping storage'));
      // Downloads pause first, so a CLI waiting on one hears why before the control API closes.
      await files?.stop().catch((err: unknown) => log.error({ err }, 'stopping files'));
      await ui?.stop().catch((err: unknown) => log.error({ err }, 'stopping the web UI'));
      await control?.stop().catch(() => {});
      if (control !== undefined && daemonToken !== undefined) removeDaemonFile(dataDir, daemonToken);
      store.close();
      releaseLock();
      emitter.emit('stopped');
      resolveDone();
    })();
    return stopping;
  };
  let daemonToken: string | undefined;

  try {
    identity = await loadOrCreateIdentity(dataDir);
    reachParts = await startReachParts({
      session,
      identity,
      token: getToken,
      host: options.host ?? PEER_DEFAULTS.pieceHostDefault,
      accept: (stream, peerId) => files?.seeding.accept(stream, peerId),
      directAddresses: () => files?.addresses() ?? [],
      punch: options.punch !== false,
      portMapping: options.portMapping,
      // Downloads started before our UDP endpoint was known went relayed: they try punching now.
      onPublicChange: () => files?.retryDirect(),
      log,
    });
    reach = reachParts.reach;
    // Downloads and storage fetches dial alike: direct, else through the holder's relays.
    const dial = reach.dial(createTlsDial(identity));
    files = await startFilesService({
      dial,
      dataDir,
      store,
      http,
      session,
      identity,
      host: options.host ?? PEER_DEFAULTS.pieceHostDefault,
      port: options.port ?? PEER_DEFAULTS.piecePortDefault,
      advertiseHost: options.advertiseHost,
      limits,
      transfers,
      ...(options.scheduler === undefined ? {} : { scheduler: options.scheduler }),
      notify,
      onEvent: emitEvent,
      log,
    });
    storage = await startStorage({
      store,
      http,
      session,
      identity,
      seeding: files.seeding,
      dial,
      bandwidth: limits.bandwidth,
      isShared: (fileId) => files!.isShared(fileId),
      storageDir: options.storageDir ?? join(dataDir, 'storage'),
      zone: options.zone ?? '',
      scrubBytesPerSec: options.scrubBytesPerSec ?? PEER_DEFAULTS.scrubBytesPerSec,
      ...(options.scrubPauseMs === undefined ? {} : { scrubPauseMs: options.scrubPauseMs }),
      log,
    });
    messaging = createMessagingService({
      store,
      http,
      session,
      userId: () => {
        const me = store.getSession()?.userId;
        if (me === undefined)
          throw new CoterieError('NOT_LOGGED_IN', "not logged in: run 'login <user_id> <password>' first");
        return me;
      },
      notify,
      onEvent: emitEvent,
    });
    const ctx: CommandContext = createCommandContext(
      {
        store,
        http,
        session,
        peerId: identity.peerId,
        serving: () => files!.serving,
        reach: () => reach!.status(),
        trackers: pool.urls,
        limits,
        onLogin: () => {
          session.disconnect();
          void learnCluster().finally(() => session.start());
        },
        onLogout: async () => {
          session.disconnect();
          await files!.pauseAll();
        },
        requestShutdown: () => {
          // after the answer to `quit` has gone out
          setTimeout(() => void stop(), 20).unref();
        },
      },
      files,
      messaging,
      storage,
    );
    const execute = <N extends string>(name: N, args: string[], io: CommandIO = {}) =>
      runCommand(ctx, name, args, io);
    daemonToken = newControlToken();
    const metrics = createPeerMetrics({ transfers: transfers.totals, uploads: () => files?.seeding.stats() });
    control = await startControlServer({ token: daemonToken, execute, metrics: metrics.scrape });
    if (options.ui !== false) {
      // Loaded only when wanted: fastify and its plugins are the UI's, not the daemon's.
      const { startUiServer } = await import('./ui/index.js');
      ui = await startUiServer({
        execute: (name, args) => execute(name, args),
        transfers: () => files!.transfers(),
        subscribe: (listener) => {
          emitter.on('event', listener);
          return () => emitter.off('event', listener);
        },
        controlToken: daemonToken,
        peerId: identity.peerId,
        port: options.ui?.port ?? 0,
        ...(options.ui?.loginAttemptsPerMinute === undefined
          ? {}
          : { loginAttemptsPerMinute: options.ui.loginAttemptsPerMinute }),
        log,
      });
    }
    writeDaemonFile(dataDir, {
      version: 1,
      pid: process.pid,
      control: { host: control.host, port: control.port },
      token: daemonToken,
      peerId: identity.peerId,
      serving: files.serving,
      ...(ui === undefined ? {} : { ui: { host: ui.host, port: ui.port } }),
      startedAt: new Date().toISOString(),
    });
    reachParts.startMapping(files.serving.port);
    if (store.getSession() !== undefined) {
      await learnCluster();
      session.start();
    }
    await files.resumeDownloads();
    log.info({ peerId: identity.peerId, serving: files.serving, control: control.port }, 'peer ready');
    const lostLogin = store.sessionNotice;
    if (lostLogin !== undefined) {
      log.warn(lostLogin);
      // Once the caller (the shell, the CLI's peer command) had the turn to listen.
      setImmediate(() => notify('tracker', lostLogin));
    }

    return Object.assign(emitter, {
      peerId: identity.peerId,
      dataDir,
      serving: files.serving,
      control: { host: control.host, port: control.port },
      ui,
      execute,
      done,
      stop,
    });
  } catch (err) {
    await stop();
    throw CoterieError.from(err, 'INTERNAL', (text) => `the peer could not start: ${text}`);
  }
}
