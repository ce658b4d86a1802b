import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { PACKAGE_VERSION } from '../os/package-version.js';
import { PRIVATE_DIR_MODE, tightenPrivateDir } from '../os/private-files.js';
import { bracketHost, formatHostPort } from '../protocol/addresses.js';
import type { ClusterMember } from '../protocol/api.js';
import { CoterieError } from '../protocol/errors.js';
import type { TrackerMessage } from '../protocol/session.js';
import { MAX_TICKET_TTL_SECONDS } from '../protocol/tickets.js';
import { formatTrackerAddress, selfSignedFingerprint } from '../protocol/tracker-url.js';
import type { RelayLimits, RunningRelay } from '../relay/index.js';
import { defaultKeyFile, type GcSettings, TRACKER_DEFAULTS } from './config.js';
import { createLocalEventBus, createPgEventBus, type EventBus } from './events/index.js';
import { createHttpApp } from './http/app.js';
import { createMetrics } from './http/metrics.js';
import { waitingListener } from './http/waiting.js';
import { startTrackerRelay } from './relay.js';
import { type ClusterService, clusterPush, createClusterService } from './services/cluster.js';
import type { ServiceDeps } from './services/context.js';
import { createFileVersionsService } from './services/file-versions.js';
import { createFilesService } from './services/files.js';
import { createGroupsService } from './services/groups.js';
import { createIdempotencyService } from './services/idempotency.js';
import { createManifestPagesService } from './services/manifest-pages.js';
import { createMessagesService } from './services/messages.js';
import { createPresenceService } from './services/presence.js';
import { createQualityService } from './services/quality.js';
import { checkReachability, dialBackCandidates } from './services/reachability.js';
import { startRebalancer } from './services/rebalance.js';
import { createRevocationsService } from './services/revocations.js';
import { createStorageService } from './services/storage.js';
import { createTicketsService } from './services/tickets.js';
import { createUsersService } from './services/users.js';
import { startStoreWorkers, storeHealth, trackerIdFor } from './start-helpers.js';
import { openStore, type Store } from './store/index.js';
import { createSessionHub } from './ws/hub.js';

/** What /healthz reports: the package's version (package.json). */
export const TRACKER_VERSION = PACKAGE_VERSION;

export interface TrackerTlsOptions {
  /** PEM certificate chain and private key (contents, not paths). */
  cert: string | Buffer;
  key: string | Buffer;
}

export interface TrackerOptions extends Partial<GcSettings> {
  host?: string;
  /** 0 picks a free port; the result says which. */
  port?: number;
  /** Holds tracker.db (unless `store` says otherwise), tracker.id and tracker.key; made private (0700) at start. */
  dataDir: string;
  /**
   * The key that wraps the signing keys in the store: `<dataDir>/tracker.key` by default, made on
   * the first start. Every tracker of a cluster needs the same one (copy it from the first).
   */
  keyFile?: string;
  /** A SQLite file path, or a postgres:// URL (a cluster's shared store). Default: `<dataDir>/tracker.db`. */
  store?: string;
  tls?: TrackerTlsOptions;
  heartbeatIntervalMs?: number;
  heartbeatTimeoutMs?: number;
  /** Default ticket lifetime, 1 … 3600 s (tests use a few seconds to see renewals). */
  ticketTtlSeconds?: number;
  sessionTtlSeconds?: number;
  /** Lower only in tests: the cost of password hashing (log2 of scrypt's N). */
  scryptLogN?: number;
  /** Messages: largest body in bytes, sends per second and burst per user, retention sweep period. */
  messageMaxBytes?: number;
  messageRatePerSecond?: number;
  messageBurst?: number;
  retentionSweepMs?: number;
  logLevel?: (typeof TRACKER_DEFAULTS)['logLevel'];
  /** A pino logger to use instead of the default JSON logger on stderr. */
  logger?: Logger;
  /** The URL peers reach this tracker at (behind a proxy, or a 0.0.0.0 bind); default: the listening URL. */
  publicUrl?: string;
  clusterHeartbeatMs?: number;
  clusterDeadAfterMs?: number;
  /** Hot lookups are cached at most this long (default 1 s); events invalidate them sooner. */
  readCacheMs?: number;
  /** Move sessions from a tracker far above the cluster's mean to those below it (default true). */
  rebalance?: boolean;
  presenceGraceMs?: number;
  /** A storage peer disconnected longer than this stops counting and its files are repaired (default 30 s). */
  storageGraceMs?: number;
  /** A replica fetch without reported progress for this long is placed elsewhere (default 10 min). */
  storageFetchStallMs?: number;
  /** PostgreSQL only: refuse to start, or to use a primary found later, unless commits wait for a synchronous standby. */
  requireSyncStandby?: boolean;
  /** A PostgreSQL store whose hosts all answer as standbys at start: where /readyz says why (http/waiting.ts). */
  onWaitingForStore?: (url: string, reason: string) => void;
  /**
   * The relay inside the tracker (issue 19): on unless `relay: false`. It listens on `relayHost`
   * (the tracker's host) and `relayPort` (default 0: any free port); peers are told
   * `relayPublicHost` (the public URL's host) with that port. Limits as in `coterie relay`.
   */
  relay?: boolean;
  relayHost?: string;
  relayPort?: number;
  relayPublicHost?: string;
  relayLimits?: Partial<RelayLimits>;
  /** Standalone relays (`coterie relay`, host:port#sha256=…) listed in GET /v1/cluster beside the trackers' own. */
  extraRelays?: string[];
  /** Account creations per client address per `accountCreationWindowMs` (default 20 in 10 min). */
  accountCreationsPerAddress?: number;
  /** The reverse proxies whose X-Forwarded-For names the client (fastify's trustProxy): addresses/CIDRs, or a hop count. */
  trustProxy?: string | number;
  /** Dial peers back at hello to tell them whether they are reachable (default true). */
  reachabilityCheck?: boolean;
  /** Stable id of this tracker among a cluster's; default: kept in `<dataDir>/tracker.id`. */
  trackerId?: string;
  /** Clock, for tests. */
  now?: () => number;
}

export interface RunningTracker {
  /** `http://host:port` or `https://…` with the real port. */
  url: string;
  port: number;
  host: string;
  trackerId: string;
  /** Where its built-in relay listens (host:port as peers are told), when it runs one. */
  relay?: string;
  /**
   * SHA-256 (hex) of its certificate when that is self-signed: the fingerprint
   * peers pin (`url#sha256=…`, protocol/tracker-url.ts).
   */
  fingerprint?: string;
  /** Closes sessions (removing their presence), the HTTP server and the store. Idempotent. */
  close(): Promise<void>;
}

/** Starts a tracker in this process: store, services, HTTP API and WebSocket sessions. */
export async function startTracker(options: TrackerOptions): Promise<RunningTracker> {
  const cfg = {
    ...TRACKER_DEFAULTS,
    ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
  } as typeof TRACKER_DEFAULTS & TrackerOptions;
  if (cfg.heartbeatIntervalMs <= 0 || cfg.heartbeatTimeoutMs <= 0) {
    throw new CoterieError('USAGE', 'heartbeat interval and timeout must be positive milliseconds');
  }
  if (
    !Number.isInteger(cfg.ticketTtlSeconds) ||
    cfg.ticketTtlSeconds < 1 ||
    cfg.ticketTtlSeconds > MAX_TICKET_TTL_SECONDS
  ) {
    throw new CoterieError('USAGE', `the ticket lifetime must be 1 … ${MAX_TICKET_TTL_SECONDS} seconds`);
  }
  const logger =
    options.logger ?? pino({ level: cfg.logLevel, base: { service: 'tracker' } }, pino.destination(2));
  try {
    mkdirSync(cfg.dataDir, { recursive: true, mode: PRIVATE_DIR_MODE });
  } catch (err) {
    throw new CoterieError(
      'USAGE',
      `cannot create the data directory ${cfg.dataDir}: ${(err as Error).message}; pass a writable --data-dir`,
      { cause: err },
    );
  }
  // The store holds password hashes, messages and the wrapped signing keys: no other local user reads them.
  const tightened = tightenPrivateDir(cfg.dataDir);
  if (tightened.length > 0) {
    logger.warn({ tightened }, 'the data directory was open to other users: made it private');
  }
  const trackerId = options.trackerId ?? trackerIdFor(cfg.dataDir);
  const now = options.now ?? Date.now;

  const announce = options.onWaitingForStore;
  const waiting = waitingListener({ ...cfg, trackerId, version: TRACKER_VERSION, announce });
  const store: Store = await openStore({
    location: cfg.store ?? join(cfg.dataDir, 'tracker.db'),
    requireSyncStandby: options.requireSyncStandby === true,
    log: (level, fields, message) => logger[level](fields, message),
    onWaitingForPrimary: waiting.open,
  }).catch(async (err: unknown) => {
    await waiting.close();
    throw err;
  });
  let bus: EventBus | undefined;
  try {
    bus =
      store.postgresUrl !== undefined
        ? await createPgEventBus({ connection: () => store.primary!.connection(), trackerId, logger })
        : createLocalEventBus((err) => logger.error({ err }, 'event handler failed'));
    const deps: ServiceDeps = { store, bus, now };
    const metrics = createMetrics();
    const policy = { scoreHalfLifeMs: cfg.scoreHalfLifeMs, corruptFlagThreshold: cfg.corruptFlagThreshold };
    const users = createUsersService({
      scrypt: { logN: cfg.scryptLogN, blockSize: cfg.scryptBlockSize, parallelism: cfg.scryptParallelism },
      sessionTtlSeconds: cfg.sessionTtlSeconds,
      loginFailuresPerUser: cfg.loginFailuresPerUser,
      loginFailuresPerAddress: cfg.loginFailuresPerAddress,
      loginFailureWindowMs: cfg.loginFailureWindowMs,
      tokenCacheMs: cfg.tokenCacheMs,
      tokenCacheEntries: cfg.tokenCacheEntries,
    })(deps);
    const cacheOptions = { readCacheMs: cfg.readCacheMs, readCacheEntries: cfg.readCacheEntries };
    const revocations = createRevocationsService()(deps);
    const groups = createGroupsService(cacheOptions)({ ...deps, revocations });
    const presence = createPresenceService(trackerId)(deps);
    const files = createFilesService(policy, cacheOptions)({ ...deps, groups, presence });
    const versions = createFileVersionsService()({ ...deps, groups, presence });
    const pages = createManifestPagesService()({ ...deps, groups });
    const tickets = createTicketsService({
      ticketTtlSeconds: cfg.ticketTtlSeconds,
      keyFile: cfg.keyFile ?? defaultKeyFile(cfg.dataDir),
      logger,
    })({ ...deps, files });
    // Before anything starts timers: a key file that does not fit the store stops the start here.
    await tickets.init();
    const quality = createQualityService(policy)(deps);
    const messages = createMessagesService({
      messageMaxBytes: cfg.messageMaxBytes,
      messageRatePerSecond: cfg.messageRatePerSecond,
      messageBurst: cfg.messageBurst,
      retentionSweepMs: cfg.retentionSweepMs,
      trackerId,
      logger,
      onBatchWritten: (n, seconds) => {
        metrics.messageBatchSize.observe(n);
        metrics.messageCommitSeconds.observe(seconds);
      },
    })({ ...deps, groups });
    const stale = await presence.clearTracker(trackerId);

    const storage = createStorageService({
      storageGraceMs: cfg.storageGraceMs,
      onReplicated: (bytes, seconds) => {
        metrics.repairBytes.inc(bytes);
        metrics.repairSeconds.observe(seconds);
      },
    })({ ...deps, groups });
    let requestsServed = 0;
    let clusterMessage: TrackerMessage | undefined;
    let liveTrackers = new Set<string>();
    const hub = createSessionHub({
      heartbeatIntervalMs: cfg.heartbeatIntervalMs,
      heartbeatTimeoutMs: cfg.heartbeatTimeoutMs,
    })({
      presence,
      files,
      messages,
      revocations,
      deletions: versions,
      storage,
      bus,
      trackerId,
      logger,
      now,
      onSessionCountChange: (n) => metrics.sessions.set(n),
      greeting: () => clusterMessage,
      ...(cfg.reachabilityCheck === false
        ? {}
        : {
            reachability: (peerId: string, addresses: string[], source: string | undefined) =>
              checkReachability(peerId, dialBackCandidates(addresses, source)),
          }),
    });
    metrics.sources.sessionStates = () => hub.sessionStates();
    metrics.sources.pool = () => store.primary?.status().pool;
    const clusterOptions = {
      trackerId,
      heartbeatMs: cfg.clusterHeartbeatMs,
      deadAfterMs: cfg.clusterDeadAfterMs,
      presenceGraceMs: cfg.presenceGraceMs,
    };
    let cluster: ClusterService | undefined;
    let relaysNow: () => string[] = () => [];

    const app = await createHttpApp({
      logger,
      metrics,
      services: {
        users,
        groups,
        files,
        versions,
        pages,
        tickets,
        quality,
        messages,
        storage,
        cluster: { members: () => cluster?.members() ?? [], relays: () => relaysNow() },
      },
      messageBodyLimitBytes: Math.max(cfg.bodyLimitBytes, 6 * cfg.messageMaxBytes + 4096),
      idempotency: createIdempotencyService()(deps),
      countRequest: () => {
        requestsServed++;
      },
      hub,
      storeHealth: () => storeHealth(store),
      trackerId,
      version: TRACKER_VERSION,
      bodyLimitBytes: cfg.bodyLimitBytes,
      accountCreation: { perAddress: cfg.accountCreationsPerAddress, windowMs: cfg.accountCreationWindowMs },
      ...(cfg.trustProxy === undefined ? {} : { trustProxy: cfg.trustProxy }),
      shareBodyLimitBytes: cfg.shareBodyLimitBytes,
      ...(cfg.tls ? { tls: cfg.tls } : {}),
    });
    try {
      await waiting.close();
      await app.listen({ host: cfg.host, port: waiting.port() ?? cfg.port });
    } catch (err) {
      await hub.close();
      await app.close();
      await messages.close();
      throw new CoterieError(
        'UNAVAILABLE',
        `cannot listen on ${formatHostPort(cfg.host, cfg.port)}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    const address = app.server.address();
    const port = typeof address === 'object' && address !== null ? address.port : cfg.port;
    const url = `${cfg.tls ? 'https' : 'http'}://${bracketHost(cfg.host)}:${port}`;
    const fingerprint = cfg.tls === undefined ? undefined : selfSignedFingerprint(cfg.tls.cert);
    const listedUrl = formatTrackerAddress({
      origin: cfg.publicUrl ?? url,
      ...(fingerprint === undefined ? {} : { fingerprint }),
    });
    let relay: { relay: RunningRelay; address: string } | undefined;
    if (cfg.relay !== false) {
      relay = await startTrackerRelay(
        {
          ...cfg.relayLimits,
          host: cfg.relayHost ?? cfg.host,
          ...(cfg.relayPort === undefined ? {} : { port: cfg.relayPort }),
          publicHost: cfg.relayPublicHost ?? new URL(cfg.publicUrl ?? url).hostname.replace(/^\[|\]$/g, ''),
          ...(cfg.tls === undefined ? {} : { tls: cfg.tls }),
        },
        users,
        logger,
      ).catch(async (err: unknown) => {
        await hub.close();
        await app.close();
        throw err;
      });
    }
    const extraRelays = cfg.extraRelays ?? [];
    const relaysOf = (members: ClusterMember[]) => [
      ...new Set([...members.flatMap((m) => (m.relay === undefined ? [] : [m.relay])), ...extraRelays]),
    ];
    relaysNow = () => relaysOf(cluster?.members() ?? []);
    cluster = createClusterService({
      ...clusterOptions,
      url: listedUrl,
      ...(relay === undefined ? {} : { relay: relay.address }),
    })({
      ...deps,
      load: { sessions: () => hub.sessionCount(), requestsServed: () => requestsServed },
      onMembersChanged: (members) => {
        // A tracker that died (gone, or back as a new incarnation) may have committed messages and
        // not lived to announce them: our sessions catch up from the store (peers drop what they hold).
        const incarnations = new Set(members.map((m) => `${m.trackerId}@${m.startedAt}`));
        const lost = [...liveTrackers].filter((k) => !incarnations.has(k) && !k.startsWith(`${trackerId}@`));
        if (lost.length > 0) hub.catchUpAll();
        liveTrackers = incarnations;
        clusterMessage = clusterPush(members, relaysOf(members), now());
        hub.broadcast(clusterMessage);
        logger.info({ trackers: members.map((m) => m.url) }, 'cluster membership changed');
      },
      onError: (err, what) => logger.warn({ err }, `${what} failed`),
    });
    try {
      await cluster.start();
    } catch (err) {
      await hub.close();
      await app.close();
      throw new CoterieError('UNAVAILABLE', `cannot join the cluster: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const workers = startStoreWorkers(cfg, trackerId, logger, metrics, deps);
    const rebalancer =
      cfg.rebalance === false
        ? undefined
        : startRebalancer({
            trackerId,
            members: () => cluster?.members() ?? [],
            sessions: () => hub.sessionCount(),
            move: (count, to) => hub.moveSessions(count, to),
            everyMs: 2 * cfg.clusterHeartbeatMs,
            options: { tolerance: cfg.rebalanceTolerance, minExcess: cfg.rebalanceMinExcess },
            logger,
          });
    logger.info(
      {
        url,
        trackerId,
        store: store.location,
        // The dialect, and whether an acknowledged write is on one machine or more (a synchronous standby).
        ...storeHealth(store),
        staleSessionsCleared: stale,
        heartbeatIntervalMs: cfg.heartbeatIntervalMs,
        heartbeatTimeoutMs: cfg.heartbeatTimeoutMs,
        ticketTtlSeconds: cfg.ticketTtlSeconds,
        sessionTtlSeconds: cfg.sessionTtlSeconds,
        relay: relay?.address ?? 'off',
      },
      'tracker started',
    );
    if (store.dialect === 'postgres' && storeHealth(store).acknowledgedOn === 'one-machine') {
      logger.warn(
        'acknowledged writes are on one machine: the primary has no synchronous standby (synchronous_standby_names); see docs/store-failover.md',
      );
    }

    let closing: Promise<void> | undefined;
    const close = () => {
      closing ??= (async () => {
        rebalancer?.stop();
        await cluster?.stop();
        await workers.stop();
        await relay?.relay.close();
        await hub.close();
        await app.close();
        await messages.close();
        await bus?.close();
        await store.close();
        logger.info({ trackerId }, 'tracker stopped');
      })();
      return closing;
    };
    return {
      url,
      port,
      host: cfg.host,
      trackerId,
      ...(relay === undefined ? {} : { relay: relay.address }),
      ...(fingerprint === undefined ? {} : { fingerprint }),
      close,
    };
  } catch (err) {
    await waiting.close();
    await bus?.close();
    await store.close();
    throw err;
  }
}
