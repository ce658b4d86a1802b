import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import { Slots } from '../../core/slots.js';
import { CoterieError, isCoterieError } from '../../protocol/errors.js';
import {
  type ClientMessage,
  encodeSessionMessage,
  MAX_WATCHED_FILES,
  parseClientMessage,
  SESSION_CLOSE,
  SESSION_PROTOCOL_VERSION,
  type TrackerMessage,
} from '../../protocol/session.js';
import type { EventBus, TrackerEvent } from '../events/index.js';
import type { FilesService } from '../services/files.js';
import type { EncodedMessage, MessagesService } from '../services/messages.js';
import type { PeerSessionInfo, PresenceService } from '../services/presence.js';
import type { RevocationsService } from '../services/revocations.js';
import type { Caller } from '../services/users.js';
import { createRevocationPush } from './revocation-push.js';

export interface HeartbeatOptions {
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
}

export interface SessionHubDeps {
  presence: PresenceService;
  files: FilesService;
  messages: MessagesService;
  /** Ticket revocations to pass on to the group's seeders. */
  revocations: Pick<RevocationsService, 'recipients' | 'recentFor'>;
  bus: EventBus;
  trackerId: string;
  logger: Logger;
  now: () => number;
  onSessionCountChange?: (count: number) => void;
  /** Sent to each session right after its welcome (the cluster's live trackers). */
  greeting?: () => TrackerMessage | undefined;
}

export interface SessionHub {
  /** Takes over an upgraded, authenticated WebSocket. */
  accept(socket: WebSocket, caller: Caller): void;
  sessionCount(): number;
  /** Sends a message to every session that said hello (the cluster membership changed). */
  broadcast(message: TrackerMessage): void;
  /**
   * Every session catches up from its cursors again (pushes may have been
   * missed: a tracker died between its commit and its event).
   */
  catchUpAll(): void;
  /** Closes every session (1001) and removes their presence; stops the heartbeat. */
  close(): Promise<void>;
}

/**
 * One connected peer. Kept small on purpose (thousands per tracker): sets are
 * created on first use, and one hub-wide timer does the heartbeats.
 */
interface Session {
  readonly id: string;
  readonly socket: WebSocket;
  readonly caller: Caller;
  readonly openedAt: number;
  info: PeerSessionInfo | undefined;
  watching: Set<string> | undefined;
  lastPingAt: number;
  pongPending: boolean;
  /**
   * Catching up after hello: live messages wait in `held` until the catch-up
   * sent everything older, so each stream arrives in order.
   */
  held: EncodedMessage[] | undefined;
  /** Asked to catch up again while catching up (events were missed): once more when done. */
  catchUpAgain: boolean;
  /** Frames are handled one after another, in order. */
  queue: Promise<void>;
  closed: boolean;
}

/** Unsent bytes queued to one session beyond which it is considered stuck and cut. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
/**
 * Catch-ups reading the store at once. After a tracker's death or a lost
 * LISTEN connection every session catches up, and a failover brings a
 * tracker's thousands of peers at once: the rest wait their turn (their live
 * pushes held meanwhile) instead of all paging through the store together.
 */
const CONCURRENT_CATCH_UPS = 16;
/** A session must say hello within this long, or it is closed. */
const HELLO_TIMEOUT_MS = 10_000;

export function createSessionHub(options: HeartbeatOptions) {
  return (deps: SessionHubDeps): SessionHub => {
    const { presence, files, messages, bus, trackerId, logger, now } = deps;
    const sessions = new Map<string, Session>();
    const byUser = new Map<string, Set<Session>>();
    const catchUpSlots = new Slots(CONCURRENT_CATCH_UPS);
    const watchers = new Map<string, Set<Session>>();
    const revocationPush = createRevocationPush<Session>({
      revocations: deps.revocations,
      sessionsOf: (userId) => [...(byUser.get(userId) ?? [])].filter((s) => s.info !== undefined),
      send: (s, m) => send(s, m),
      logger,
    });

    const addTo = (map: Map<string, Set<Session>>, key: string, s: Session) => {
      const set = map.get(key);
      if (set === undefined) map.set(key, new Set([s]));
      else set.add(s);
    };
    const removeFrom = (map: Map<string, Set<Session>>, key: string, s: Session) => {
      const set = map.get(key);
      if (set === undefined) return;
      set.delete(s);
      if (set.size === 0) map.delete(key);
    };

    const send = (s: Session, message: TrackerMessage) => {
      if (s.closed || s.socket.readyState !== s.socket.OPEN) return;
      // A peer that does not read its pushes must not grow the tracker's memory without bound.
      if (s.socket.bufferedAmount > MAX_BUFFERED_BYTES) {
        logger.warn({ sessionId: s.id, userId: s.caller.userId }, 'session not reading its events: closed');
        s.socket.terminate();
        return;
      }
      s.socket.send(encodeSessionMessage(message));
    };
    /** Frames of messages stay well under the session's frame cap (messages are at most 64 KiB by default). */
    const MESSAGES_FRAME_BYTES = 256 * 1024;
    const sendMessages = (s: Session, items: readonly EncodedMessage[]) => {
      if (s.closed || s.socket.readyState !== s.socket.OPEN) return;
      if (s.socket.bufferedAmount > MAX_BUFFERED_BYTES) {
        // Nothing is lost: messages are stored, and the peer catches up from its cursor when it comes back.
        logger.warn({ sessionId: s.id, userId: s.caller.userId }, 'session not reading its messages: closed');
        s.socket.terminate();
        return;
      }
      let part: string[] = [];
      let bytes = 0;
      const flush = () => {
        if (part.length === 0) return;
        // The items are JSON already: splice them in rather than encode each message per session.
        s.socket.send(`{"type":"messages","items":[${part.join(',')}]}`);
        part = [];
        bytes = 0;
      };
      for (const m of items) {
        if (bytes + m.json.length > MESSAGES_FRAME_BYTES) flush();
        part.push(m.json);
        bytes += m.json.length;
      }
      flush();
    };

    messages.setConnectedUsers((users) => users.filter((u) => byUser.has(u)));
    const unsubscribeStored = messages.onStored((batch) => {
      const out = new Map<Session, EncodedMessage[]>();
      for (const m of batch.messages) {
        for (const user of batch.readers.get(m.message.streamId) ?? []) {
          if (user === m.message.sender) continue;
          for (const s of byUser.get(user) ?? []) {
            if (s.info === undefined) continue; // it catches up after its hello
            if (s.held !== undefined) {
              s.held.push(m);
              continue;
            }
            const list = out.get(s);
            if (list === undefined) out.set(s, [m]);
            else list.push(m);
          }
        }
      }
      for (const [s, items] of out) sendMessages(s, items);
    });

    /**
     * Sends everything after the user's cursors, then what arrived meanwhile,
     * then `synced`; at most CONCURRENT_CATCH_UPS at a time.
     */
    async function catchUp(s: Session): Promise<void> {
      await catchUpSlots.acquire();
      try {
        await sendFromCursors(s);
      } finally {
        catchUpSlots.release();
      }
      if (s.catchUpAgain && !s.closed) {
        s.catchUpAgain = false;
        s.held = [];
        void catchUp(s);
      }
    }

    async function sendFromCursors(s: Session): Promise<void> {
      const lastSent = new Map<string, number>();
      let count = 0;
      try {
        for await (const page of messages.catchUp(s.caller.userId)) {
          if (s.closed) return;
          sendMessages(s, page);
          count += page.length;
          const last = page[page.length - 1]!.message;
          lastSent.set(last.streamId, last.seq);
          // Let the socket drain before the next page: catch-up must not buffer a whole history.
          while (!s.closed && s.socket.bufferedAmount > MAX_BUFFERED_BYTES / 4) {
            await new Promise((r) => setTimeout(r, 5));
          }
        }
      } catch (err) {
        logger.error({ err, sessionId: s.id }, 'message catch-up failed');
      }
      const held = s.held ?? [];
      s.held = undefined;
      const fresh = held.filter((m) => m.message.seq > (lastSent.get(m.message.streamId) ?? 0));
      sendMessages(s, fresh);
      send(s, { type: 'synced', count: count + fresh.length, at: now() });
    }

    /**
     * Pushes may have been missed (the cluster's events were not heard for a
     * while): every session catches up again from its cursors, live pushes held
     * meanwhile as after hello. Its peer drops what it already holds.
     */
    function catchUpAll() {
      for (const s of sessions.values()) catchUpAgain(s);
    }

    /**
     * A user became a reader of a stream (a topic subscribed, a group joined)
     * through a tracker whose event came after pushes planned without them:
     * their sessions here catch up, so nothing between their new cursor and
     * the next push is skipped (and a new member gets the group's history now).
     */
    function catchUpUser(userId: string) {
      for (const s of byUser.get(userId) ?? []) catchUpAgain(s);
    }

    function catchUpAgain(s: Session) {
      if (s.info === undefined || s.closed) return; // it catches up after its hello
      if (s.held !== undefined) {
        s.catchUpAgain = true;
        return;
      }
      s.held = [];
      void catchUp(s);
    }

    /**
     * Answers to pipelined sends come in bursts (a whole commit at once): hold
     * the socket's writes until the burst is over, so that one write carries
     * many small frames instead of one system call each.
     */
    const corked = new Set<Session>();
    const sendBurst = (s: Session, message: TrackerMessage) => {
      const raw = (s.socket as unknown as { _socket?: { cork(): void; uncork(): void } })._socket;
      if (raw !== undefined && !corked.has(s)) {
        raw.cork();
        if (corked.size === 0) {
          setImmediate(() => {
            for (const c of corked)
              (c.socket as unknown as { _socket?: { uncork(): void } })._socket?.uncork();
            corked.clear();
          });
        }
        corked.add(s);
      }
      send(s, message);
    };

    const unsubscribeReceipts = messages.onReceipts((receipts) => {
      for (const r of receipts) {
        for (const sender of r.senders) {
          for (const s of byUser.get(sender) ?? []) {
            if (s.info === undefined) continue;
            sendBurst(s, {
              type: 'receipt',
              streamId: r.streamId,
              reader: r.reader,
              delivered: r.delivered,
              read: r.read,
              at: r.at,
            });
          }
        }
      }
    });

    const sendError = (s: Session, err: CoterieError, id?: string | number) =>
      send(s, { type: 'error', ...(id === undefined ? {} : { id }), code: err.code, message: err.message });

    // One timer for all sessions: ping those due, kill those whose pong is overdue.
    const tickMs = Math.max(
      10,
      Math.floor(Math.min(options.heartbeatIntervalMs, options.heartbeatTimeoutMs) / 4),
    );
    const sweep = setInterval(() => {
      const t = now();
      for (const s of sessions.values()) {
        if (s.closed) continue;
        if (s.info === undefined && t - s.openedAt > Math.max(HELLO_TIMEOUT_MS, options.heartbeatTimeoutMs)) {
          s.socket.close(SESSION_CLOSE.BAD_HELLO, 'no hello');
          continue;
        }
        if (s.pongPending) {
          if (t - s.lastPingAt >= options.heartbeatTimeoutMs) {
            logger.info(
              { sessionId: s.id, userId: s.caller.userId, peerId: s.info?.peerId },
              'session heartbeat timeout',
            );
            s.socket.terminate();
          }
        } else if (t - s.lastPingAt >= options.heartbeatIntervalMs) {
          s.pongPending = true;
          s.lastPingAt = t;
          s.socket.ping();
        }
      }
    }, tickMs);
    // The sweep must not keep a process alive on its own; close() clears it.
    sweep.unref();

    const unsubscribe = bus.subscribe((event: TrackerEvent) => {
      switch (event.kind) {
        case 'events_lost':
          catchUpAll();
          break;
        case 'join_requested':
          for (const s of byUser.get(event.owner) ?? []) {
            if (s.info)
              send(s, { type: 'join_requested', groupId: event.groupId, userId: event.userId, at: event.at });
          }
          break;
        case 'subscription_changed':
          if (event.subscribed) catchUpUser(event.userId);
          break;
        case 'join_decided':
          if (event.accepted) catchUpUser(event.userId);
          for (const s of byUser.get(event.userId) ?? []) {
            if (s.info) {
              send(s, {
                type: event.accepted ? 'join_accepted' : 'join_declined',
                groupId: event.groupId,
                userId: event.userId,
                at: event.at,
              });
            }
          }
          break;
        case 'seeder_appeared':
          for (const s of watchers.get(event.fileId) ?? []) {
            send(s, {
              type: 'seeder_appeared',
              fileId: event.fileId,
              peerId: event.peerId,
              userId: event.userId,
              addresses: event.addresses,
              at: event.at,
            });
          }
          break;
        case 'seeder_left':
          for (const s of watchers.get(event.fileId) ?? []) {
            send(s, { type: 'seeder_left', fileId: event.fileId, peerId: event.peerId, at: event.at });
          }
          break;
        case 'peer_replaced': {
          const s = sessions.get(event.sessionId);
          if (s !== undefined)
            s.socket.close(SESSION_CLOSE.REPLACED, 'replaced by a newer session of this peer');
          break;
        }
        case 'tickets_revoked':
          revocationPush.onEvent(event);
          break;
        case 'token_revoked':
          for (const s of sessions.values()) {
            if (s.caller.tokenHash === event.tokenHash)
              s.socket.close(SESSION_CLOSE.UNAUTHENTICATED, 'logged out');
          }
          break;
      }
    });

    async function handle(s: Session, message: ClientMessage): Promise<void> {
      const ack = () => {
        if (message.id !== undefined) send(s, { type: 'ack', id: message.id });
      };
      if (message.type === 'ping') {
        send(s, { type: 'pong', ...(message.id === undefined ? {} : { id: message.id }) });
        return;
      }
      if (message.type === 'hello') {
        if (message.v !== SESSION_PROTOCOL_VERSION) {
          sendError(
            s,
            new CoterieError(
              'PROTOCOL_ERROR',
              `session protocol version ${message.v} is not supported: this tracker speaks ${SESSION_PROTOCOL_VERSION}`,
            ),
            message.id,
          );
          s.socket.close(SESSION_CLOSE.BAD_HELLO, 'unsupported version');
          return;
        }
        if (s.info !== undefined && s.info.peerId !== message.peerId) {
          throw new CoterieError(
            'PROTOCOL_ERROR',
            'this session already said hello as another peer: open a new session',
          );
        }
        const info: PeerSessionInfo = {
          sessionId: s.id,
          userId: s.caller.userId,
          peerId: message.peerId,
          addresses: message.addresses,
        };
        await presence.register(info, message.seeding);
        if (s.closed) {
          // Closed while registering: undo, or the peer would stay listed.
          await presence.unregister(info);
          return;
        }
        s.info = info;
        s.held ??= [];
        send(s, {
          type: 'welcome',
          v: SESSION_PROTOCOL_VERSION,
          ...(message.id === undefined ? {} : { id: message.id }),
          sessionId: s.id,
          trackerId,
          userId: s.caller.userId,
          peerId: message.peerId,
          heartbeatIntervalMs: options.heartbeatIntervalMs,
          heartbeatTimeoutMs: options.heartbeatTimeoutMs,
        });
        void catchUp(s);
        revocationPush.afterWelcome(s, s.caller.userId);
        const greeting = deps.greeting?.();
        if (greeting !== undefined) send(s, greeting);
        return;
      }
      const info = s.info;
      if (info === undefined) {
        throw new CoterieError('PROTOCOL_ERROR', `send hello before ${message.type}`);
      }
      switch (message.type) {
        case 'send': {
          // Queued in frame order, acknowledged at commit: a sender may pipeline many sends.
          const { type: _t, id, ...input } = message;
          const { committed } = await messages.submit(s.caller.userId, input);
          committed.then(
            (r) => sendBurst(s, { type: 'sent', ...(id === undefined ? {} : { id }), ...r }),
            (err: unknown) =>
              sendError(
                s,
                isCoterieError(err) ? err : new CoterieError('INTERNAL', 'the send failed; it was logged'),
                id,
              ),
          );
          return;
        }
        case 'ack_messages': {
          // Checked and queued in frame order; answered at commit without holding up the next frames.
          const { committed } = await messages.ack(s.caller.userId, message.cursors);
          const id = message.id;
          if (id !== undefined) void committed.then(() => sendBurst(s, { type: 'ack', id }));
          return;
        }
        case 'announce':
          await presence.announce(info, message.files);
          break;
        case 'unannounce':
          await presence.unannounce(info, message.files);
          break;
        case 'addresses':
          info.addresses = message.addresses;
          await presence.setAddresses(info, message.addresses);
          break;
        case 'watch': {
          const allowed = await files.visible(s.caller.userId, message.files);
          const refused = message.files.filter((f) => !allowed.has(f));
          s.watching ??= new Set();
          for (const f of allowed) {
            if (s.watching.size >= MAX_WATCHED_FILES) {
              throw new CoterieError(
                'BAD_REQUEST',
                `a session watches at most ${MAX_WATCHED_FILES} files: unwatch some`,
              );
            }
            s.watching.add(f);
            addTo(watchers, f, s);
          }
          if (refused.length > 0) {
            throw new CoterieError(
              'FILE_NOT_FOUND',
              `not watching ${refused.length} file(s) not shared in any of your groups: ${refused
                .slice(0, 3)
                .map((f) => `${f.slice(0, 12)}…`)
                .join(', ')}`,
              { details: { files: refused.slice(0, 100) } },
            );
          }
          break;
        }
        case 'unwatch':
          for (const f of message.files) {
            s.watching?.delete(f);
            removeFrom(watchers, f, s);
          }
          break;
      }
      ack();
    }

    function onFrame(s: Session, data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) {
      let message: ClientMessage;
      try {
        if (isBinary)
          throw new CoterieError(
            'PROTOCOL_ERROR',
            'binary frames are not part of the session protocol: send JSON text',
          );
        message = parseClientMessage(data);
      } catch (err) {
        const e = isCoterieError(err) ? err : new CoterieError('PROTOCOL_ERROR', 'unreadable frame');
        const id = e.details?.id;
        sendError(s, e, typeof id === 'string' || typeof id === 'number' ? id : undefined);
        return;
      }
      s.queue = s.queue.then(async () => {
        if (s.closed) return;
        try {
          await handle(s, message);
        } catch (err) {
          if (isCoterieError(err)) {
            sendError(s, err, message.id);
          } else {
            logger.error({ err, sessionId: s.id, type: message.type }, 'session message failed');
            sendError(
              s,
              new CoterieError('INTERNAL', 'the tracker failed to handle this message; it was logged'),
              message.id,
            );
          }
        }
      });
    }

    async function onClose(s: Session) {
      if (s.closed) return;
      s.closed = true;
      sessions.delete(s.id);
      removeFrom(byUser, s.caller.userId, s);
      for (const f of s.watching ?? []) removeFrom(watchers, f, s);
      deps.onSessionCountChange?.(sessions.size);
      // Wait for a hello in progress so its presence row is removed, not left behind.
      await s.queue;
      if (s.info !== undefined) {
        try {
          await presence.unregister(s.info);
        } catch (err) {
          logger.error({ err, sessionId: s.id }, 'failed to remove presence of a closed session');
        }
      }
    }

    const closing = new Set<Promise<void>>();

    return {
      accept(socket, caller) {
        const t = now();
        const s: Session = {
          id: randomUUID(),
          socket,
          caller,
          openedAt: t,
          info: undefined,
          watching: undefined,
          held: undefined,
          catchUpAgain: false,
          lastPingAt: t,
          pongPending: false,
          queue: Promise.resolve(),
          closed: false,
        };
        sessions.set(s.id, s);
        addTo(byUser, caller.userId, s);
        deps.onSessionCountChange?.(sessions.size);
        socket.on('message', (data, isBinary) => onFrame(s, data, isBinary));
        socket.on('pong', () => {
          s.pongPending = false;
        });
        socket.on('error', (err) => logger.debug({ err, sessionId: s.id }, 'session socket error'));
        socket.on('close', () => {
          const p = onClose(s);
          closing.add(p);
          void p.finally(() => closing.delete(p));
        });
      },

      sessionCount: () => sessions.size,

      broadcast(message) {
        for (const s of sessions.values()) if (s.info !== undefined) send(s, message);
      },

      catchUpAll,

      async close() {
        clearInterval(sweep);
        unsubscribe();
        unsubscribeStored();
        unsubscribeReceipts();
        const all = [...sessions.values()];
        for (const s of all) s.socket.close(SESSION_CLOSE.SHUTDOWN, 'tracker shutting down');
        await Promise.all(all.map((s) => onClose(s)));
        await Promise.all([...closing]);
        for (const s of all) s.socket.terminate();
      },
    };
  };
}
