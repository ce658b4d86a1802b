import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import { SESSION_CLOSE, type TrackerMessage } from '../../protocol/session.js';
import type { EventBus } from '../events/index.js';
import type { FileVersionsService } from '../services/file-versions.js';
import type { FilesService } from '../services/files.js';
import type { MessagesService } from '../services/messages.js';
import type { PresenceService } from '../services/presence.js';
import type { RevocationsService } from '../services/revocations.js';
import type { StorageService } from '../services/storage.js';
import type { Caller } from '../services/users.js';
import { createFrameHandler, type FrameHandlerDeps } from './frame-handler.js';
import { Heartbeat, type HeartbeatClock, type HeartbeatOptions, systemHeartbeatClock } from './heartbeat.js';
import { createOutbox } from './outbox.js';
import { startPushes } from './pushes.js';
import { SessionRegistry } from './registry.js';
import { createRevocationPush } from './revocation-push.js';
import { type Corkable, newSession, type Session } from './session.js';
import { createSessionCatchUp } from './session-catch-up.js';
import { createSessionOrder } from './session-order.js';

export type { HeartbeatOptions } from './heartbeat.js';
export type { Corkable } from './session.js';

export interface SessionHubDeps {
  presence: PresenceService;
  files: FilesService;
  messages: MessagesService;
  /** Ticket revocations to pass on to the group's seeders. */
  revocations: Pick<RevocationsService, 'recipients' | 'recentFor'>;
  /** Deleted files to pass on to the group's seeders (and to replay at hello). */
  deletions?: Pick<FileVersionsService, 'recentDeletionsFor'>;
  /** Storage peers: their reports, standing assignments and departures (issue 16). */
  storage?: Pick<StorageService, 'report' | 'standing' | 'peerLeft'>;
  bus: EventBus;
  trackerId: string;
  logger: Logger;
  now: () => number;
  /** The heartbeat's timers; by default the process's, on `now`. */
  clock?: HeartbeatClock;
  onSessionCountChange?: (count: number) => void;
  /** Sent to each session right after its welcome (the cluster's live trackers). */
  greeting?: () => TrackerMessage | undefined;
  /** The reachability dial-back (issue 19); none: welcomes say nothing of it. */
  reachability?: FrameHandlerDeps['reachability'];
}

export interface SessionHub {
  /**
   * Takes over an upgraded, authenticated WebSocket; `transport` is the
   * upgraded request's socket (`request.raw.socket`), corked for bursts.
   */
  accept(socket: WebSocket, caller: Caller, transport: Corkable): void;
  sessionCount(): number;
  /** Open sessions by state (metrics): `hello` (none yet), `catching_up`, `live`. */
  sessionStates(): Record<'hello' | 'catching_up' | 'live', number>;
  /** Sends a message to every session that said hello (the cluster membership changed). */
  broadcast(message: TrackerMessage): void;
  /**
   * Asks up to `count` greeted sessions, the newest first (the least settled),
   * to move to the tracker at `url` (rebalancing); returns how many were asked.
   */
  moveSessions(count: number, url: string): number;
  /**
   * Every session catches up from its cursors again (pushes may have been
   * missed: a tracker died between its commit and its event).
   */
  catchUpAll(): void;
  /** Closes every session (1001) and removes their presence; stops the heartbeat. */
  close(): Promise<void>;
}

/** A session must say hello within this long, or it is closed. */
const HELLO_TIMEOUT_MS = 10_000;

/**
 * Joins the session's parts: the registry, the heartbeat, the outbox, the
 * catch-ups, the pushes and the frame handler. What is left here is a
 * session's life: accepted, listened to, closed.
 */
export function createSessionHub(options: HeartbeatOptions) {
  return (deps: SessionHubDeps): SessionHub => {
    const { presence, messages, logger } = deps;
    const registry = new SessionRegistry();
    const outbox = createOutbox(logger);
    const order = createSessionOrder({ messages, outbox, logger });
    const catchUp = createSessionCatchUp({ messages, registry, outbox, order, logger, now: deps.now });
    const revocationPush = createRevocationPush<Session>({
      revocations: deps.revocations,
      ...(deps.deletions === undefined ? {} : { deletions: deps.deletions }),
      // A copy: sending may cut a session, and the registry must not change under the loop.
      sessionsOf: (userId) => [...registry.greetedOf(userId)],
      send: outbox.send,
      logger,
    });
    const stopPushes = startPushes({
      ...{ messages, bus: deps.bus, registry, outbox },
      ...{ catchUp, order, revocationPush, presence },
      onError: (err: unknown) => logger.error({ err }, 'cannot push a moved peer'),
    });
    const onFrame = createFrameHandler({
      presence,
      files: deps.files,
      messages,
      registry,
      outbox,
      catchUp,
      revocationPush,
      ...(deps.storage === undefined ? {} : { storage: deps.storage }),
      trackerId: deps.trackerId,
      heartbeat: options,
      logger,
      greeting: deps.greeting,
      ...(deps.reachability === undefined ? {} : { reachability: deps.reachability }),
      punch: (from, m) =>
        deps.bus.publish({
          kind: 'punch',
          peerId: m.peerId,
          from,
          endpoint: m.endpoint,
          n: m.n,
          at: Date.now(),
        }),
    });

    const heartbeat = new Heartbeat<Session>(
      {
        ping: (s) => s.socket.ping(),
        greeted: (s) => s.info !== undefined,
        cut(s, reason) {
          if (reason === 'no hello') {
            s.socket.close(SESSION_CLOSE.BAD_HELLO, 'no hello');
            return;
          }
          logger.info(
            { sessionId: s.id, userId: s.caller.userId, peerId: s.info?.peerId },
            'session heartbeat timeout',
          );
          s.socket.terminate();
        },
      },
      { ...options, helloTimeoutMs: Math.max(HELLO_TIMEOUT_MS, options.heartbeatTimeoutMs) },
      deps.clock ?? systemHeartbeatClock(deps.now),
    );
    heartbeat.start();

    async function onClose(s: Session) {
      if (s.closed) return;
      s.closed = true;
      registry.remove(s);
      heartbeat.remove(s);
      deps.onSessionCountChange?.(registry.size);
      // Wait for a hello in progress so its presence row is removed, not left behind.
      await s.queue;
      if (s.info !== undefined) {
        try {
          await presence.unregister(s.info);
          await deps.storage?.peerLeft(s.info.peerId);
        } catch (err) {
          logger.error({ err, sessionId: s.id }, 'failed to remove presence of a closed session');
        }
      }
    }

    const closing = new Set<Promise<void>>();

    return {
      accept(socket, caller, transport) {
        const s = newSession(randomUUID(), socket, transport, caller);
        registry.add(s);
        heartbeat.add(s);
        deps.onSessionCountChange?.(registry.size);
        socket.on('message', (data, isBinary) => {
          heartbeat.heard(s);
          onFrame(s, data, isBinary);
        });
        socket.on('ping', () => heartbeat.heard(s));
        socket.on('pong', () => heartbeat.pong(s));
        socket.on('error', (err) => logger.debug({ err, sessionId: s.id }, 'session socket error'));
        socket.on('close', () => {
          const p = onClose(s);
          closing.add(p);
          void p.finally(() => closing.delete(p));
        });
      },

      sessionCount: () => registry.size,

      sessionStates() {
        const states = { hello: 0, catching_up: 0, live: 0 };
        for (const s of registry.all()) {
          if (s.info === undefined) states.hello++;
          else if (s.held !== undefined) states.catching_up++;
          else states.live++;
        }
        return states;
      },

      broadcast(message) {
        for (const s of registry.all()) if (s.info !== undefined) outbox.send(s, message);
      },

      moveSessions(count, url) {
        // The registry keeps sessions in the order they came: the newest are last.
        const greeted = [...registry.all()].filter((s) => s.info !== undefined && !s.closed);
        const chosen = count > 0 ? greeted.slice(-count) : [];
        for (const s of chosen) outbox.send(s, { type: 'move', url, at: deps.now() });
        return chosen.length;
      },

      catchUpAll: catchUp.all,

      async close() {
        heartbeat.stop();
        stopPushes();
        const all = [...registry.all()];
        for (const s of all) s.socket.close(SESSION_CLOSE.SHUTDOWN, 'tracker shutting down');
        await Promise.all(all.map((s) => onClose(s)));
        await Promise.all([...closing]);
        for (const s of all) s.socket.terminate();
      },
    };
  };
}
