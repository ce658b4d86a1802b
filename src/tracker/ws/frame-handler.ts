import type { Logger } from 'pino';
import type { MessageSent } from '../../protocol/api.js';
import { CoterieError, isCoterieError } from '../../protocol/errors.js';
import {
  type ClientMessage,
  isSessionFeature,
  MAX_WATCHED_FILES,
  type PunchMessage,
  parseClientMessage,
  type Reachability,
  SESSION_CLOSE,
  SESSION_FEATURES,
  SESSION_PROTOCOL_VERSION,
  type TrackerMessage,
} from '../../protocol/session.js';
import type { FilesService } from '../services/files.js';
import type { MessagesService } from '../services/messages.js';
import type { PeerSessionInfo, PresenceService } from '../services/presence.js';
import type { StorageService } from '../services/storage.js';
import type { HeartbeatOptions } from './heartbeat.js';
import type { Outbox } from './outbox.js';
import type { SessionRegistry } from './registry.js';
import type { RevocationPush } from './revocation-push.js';
import type { Session } from './session.js';
import type { SessionCatchUp } from './session-catch-up.js';

export interface FrameHandlerDeps {
  presence: PresenceService;
  files: Pick<FilesService, 'visible'>;
  messages: Pick<MessagesService, 'submit' | 'submitNow' | 'ack' | 'ackNow'>;
  registry: SessionRegistry;
  outbox: Outbox;
  catchUp: SessionCatchUp;
  revocationPush: RevocationPush<Session>;
  /** Storage peers' reports and their standing assignments (issue 16). */
  storage?: Pick<StorageService, 'report' | 'standing'>;
  trackerId: string;
  /** Told to the peer in the welcome. */
  heartbeat: HeartbeatOptions;
  logger: Logger;
  /** Sent to each session right after its welcome (the cluster's live trackers). */
  greeting?: () => TrackerMessage | undefined;
  /** The dial-back (services/reachability.ts): told in the welcome and after each addresses update. */
  reachability?: (peerId: string, addresses: string[], source: string | undefined) => Promise<Reachability>;
  /** Passes a `punch` on to the tracker holding the target's session (the cluster's bus). */
  punch?: (from: string, message: PunchMessage) => Promise<void>;
}

/**
 * The session protocol's client side as the tracker hears it: each frame
 * parsed, then handled in its session's order (a frame waits for the one
 * before), its error answered with the frame's id.
 */
export function createFrameHandler(deps: FrameHandlerDeps) {
  const { presence, files, messages, registry, outbox, logger } = deps;
  const punchLimit = new PunchLimit();
  /** Each session's last dial-back verdict told or on its way. */
  const verdicts = new WeakMap<Session, Promise<void>>();

  /**
   * Tells the session the dial-back's verdict once it comes, after any verdict
   * asked for before it: the latest addresses' verdict is the last word.
   */
  function tellReachability(s: Session, check: Promise<Reachability> | undefined): Promise<void> {
    if (check === undefined) return Promise.resolve();
    const told = Promise.all([verdicts.get(s), check]).then(
      ([, r]) => {
        if (!s.closed) outbox.send(s, { type: 'reachability', ...r, at: Date.now() });
      },
      (err: unknown) => logger.error({ err, sessionId: s.id }, 'reachability check failed'),
    );
    verdicts.set(s, told);
    return told;
  }

  async function hello(s: Session, message: Extract<ClientMessage, { type: 'hello' }>): Promise<void> {
    if (message.v !== SESSION_PROTOCOL_VERSION) {
      outbox.sendError(
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
    const reachable = deps.reachability?.(message.peerId, message.addresses, s.transport.remoteAddress);
    await presence.register(info, message.seeding);
    if (s.closed) {
      // Closed while registering: undo, or the peer would stay listed.
      await presence.unregister(info);
      return;
    }
    s.info = info;
    // Asked for in the hello by clients that know this tracker is new enough (the bench's);
    // others `enable` them after the welcome. A later hello of the session only adds.
    s.sentBatches ||= message.sentBatches === true;
    s.receiptBatches ||= message.receiptBatches === true;
    s.held ??= [];
    outbox.send(s, {
      type: 'welcome',
      v: SESSION_PROTOCOL_VERSION,
      ...(message.id === undefined ? {} : { id: message.id }),
      sessionId: s.id,
      trackerId: deps.trackerId,
      userId: s.caller.userId,
      peerId: message.peerId,
      heartbeatIntervalMs: deps.heartbeat.heartbeatIntervalMs,
      heartbeatTimeoutMs: deps.heartbeat.heartbeatTimeoutMs,
      features: [...SESSION_FEATURES],
    });
    // The dial-back's verdict follows the welcome: a peer failing over is served again without
    // waiting for a TLS handshake to itself (2 s for a peer behind a NAT that drops it).
    void tellReachability(s, reachable);
    void deps.catchUp.run(s);
    deps.revocationPush.afterWelcome(s, s.caller.userId);
    const greeting = deps.greeting?.();
    if (greeting !== undefined) outbox.send(s, greeting);
    // A storage peer gets its standing assignments again: a push may have been lost while it was away.
    deps.storage?.standing(info.peerId).then(
      (orders) => {
        for (const o of orders) outbox.send(s, o);
      },
      (err: unknown) => logger.error({ err, sessionId: s.id }, 'cannot resend storage assignments'),
    );
  }

  async function watch(s: Session, fileIds: string[]): Promise<void> {
    const allowed = await files.visible(s.caller.userId, fileIds);
    const refused = fileIds.filter((f) => !allowed.has(f));
    for (const f of allowed) {
      if ((s.watching?.size ?? 0) >= MAX_WATCHED_FILES) {
        throw new CoterieError(
          'BAD_REQUEST',
          `a session watches at most ${MAX_WATCHED_FILES} files: unwatch some`,
        );
      }
      registry.watch(s, f);
    }
    // The seeders already there: a peer that looked a file up, found no seeder and then asked to
    // watch it would otherwise miss one that registered between the two (seeder_appeared goes to
    // watchers only), and wait for good. Sent after the watch is in place, so none falls between.
    for (const seeder of await presence.seedersOf([...allowed])) {
      if (seeder.peerId === s.info?.peerId) continue;
      outbox.send(s, { type: 'seeder_appeared', ...seeder, at: Date.now() });
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
  }

  /**
   * Switches features on (session-features.ts): all named or, if one is not offered, none. Handled in
   * frame order, so the answers to the client's later frames and every push after it take the new form.
   */
  function enable(s: Session, features: readonly string[]): void {
    const unknown = features.filter((f) => !isSessionFeature(f));
    if (unknown.length > 0) {
      throw new CoterieError(
        'PROTOCOL_ERROR',
        `this tracker does not offer ${unknown.slice(0, 3).join(', ')}: enable only what the welcome lists (${SESSION_FEATURES.join(', ')}); nothing was enabled`,
      );
    }
    for (const f of features) {
      if (f === 'sentBatches') s.sentBatches = true;
      else if (f === 'receiptBatches') s.receiptBatches = true;
    }
  }

  async function handle(s: Session, message: ClientMessage): Promise<void> {
    if (message.type === 'ping') {
      outbox.send(s, { type: 'pong', ...(message.id === undefined ? {} : { id: message.id }) });
      return;
    }
    if (message.type === 'hello') return hello(s, message);
    const info = s.info;
    if (info === undefined) {
      throw new CoterieError('PROTOCOL_ERROR', `send hello before ${message.type}`);
    }
    switch (message.type) {
      case 'send': {
        // Queued in frame order, acknowledged at commit: a sender may pipeline many sends. The frame
        // is passed as it is (submit reads the send's fields only): no copy per message.
        answerSend(s, message.id, (await messages.submit(s.caller.userId, message)).committed);
        return;
      }
      case 'ack_messages': {
        // Checked and queued in frame order; answered at commit without holding up the next frames.
        answerAck(s, message.id, (await messages.ack(s.caller.userId, message.cursors)).committed);
        return;
      }
      case 'announce':
        await presence.announce(info, message.files);
        break;
      case 'unannounce':
        await presence.unannounce(info, message.files);
        break;
      case 'addresses': {
        await presence.setAddresses(info, message.addresses);
        await tellReachability(
          s,
          deps.reachability?.(info.peerId, message.addresses, s.transport.remoteAddress),
        );
        break;
      }
      case 'watch':
        await watch(s, message.files);
        break;
      case 'unwatch':
        for (const f of message.files) registry.unwatch(s, f);
        break;
      case 'enable':
        enable(s, message.features);
        break;
      case 'punch':
        if (deps.punch === undefined)
          throw new CoterieError('BAD_REQUEST', 'this tracker does not coordinate hole punching');
        punchLimit.take(s, info.peerId);
        await deps.punch(info.peerId, message);
        break;
      case 'replicas': {
        if (deps.storage === undefined)
          throw new CoterieError('BAD_REQUEST', 'this tracker keeps no replicas');
        for (const order of await deps.storage.report(info, message.groups)) outbox.send(s, order);
        break;
      }
    }
    if (message.id !== undefined) outbox.send(s, { type: 'ack', id: message.id });
  }

  /** Answers an acknowledgement with an id once its cursors are written. */
  function answerAck(s: Session, id: string | number | undefined, committed: Promise<void> | undefined) {
    if (id !== undefined) void committed?.then(() => outbox.sendBurst(s, { type: 'ack', id }));
  }

  /** Answers a queued send once its commit settles. */
  function answerSend(s: Session, id: string | number | undefined, committed: Promise<MessageSent>): void {
    committed.then(
      (r) => outbox.sendSent(s, id, r),
      (err: unknown) =>
        outbox.sendError(s, CoterieError.from(err, 'INTERNAL', 'the send failed; it was logged'), id),
    );
  }

  /** A frame's failure, answered with its id (an unexpected one logged first). */
  function answerError(s: Session, message: ClientMessage, err: unknown): void {
    if (isCoterieError(err)) {
      outbox.sendError(s, err, message.id);
      return;
    }
    logger.error({ err, sessionId: s.id, type: message.type }, 'session message failed');
    outbox.sendError(
      s,
      new CoterieError('INTERNAL', 'the tracker failed to handle this message; it was logged'),
      message.id,
    );
  }

  /** Takes one frame off the socket: a bad one is answered at once, a good one queued behind the session's others. */
  return function onFrame(s: Session, data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): void {
    let message: ClientMessage;
    try {
      if (isBinary)
        throw new CoterieError(
          'PROTOCOL_ERROR',
          'binary frames are not part of the session protocol: send JSON text',
        );
      message = parseClientMessage(data);
    } catch (err) {
      const e = CoterieError.from(err, 'PROTOCOL_ERROR', 'unreadable frame');
      const id = e.details?.id;
      outbox.sendError(s, e, typeof id === 'string' || typeof id === 'number' ? id : undefined);
      return;
    }
    // A send that needs no read, with nothing queued before it, is queued for its commit now: in
    // frame order still, without the promises and turns of the session's queue (at full rate
    // those were a quarter of the tracker's allocations per message).
    if (message.type === 'send' && s.pending === 0 && s.info !== undefined && !s.closed) {
      let now: { committed: Promise<MessageSent> } | undefined;
      try {
        now = messages.submitNow(s.caller.userId, message);
      } catch (err) {
        answerError(s, message, err);
        return;
      }
      if (now !== undefined) {
        answerSend(s, message.id, now.committed);
        return;
      }
    }
    // The same for an acknowledgement whose checks need no read (a cached group's member, the
    // user's own conversation): a group of 1,000 sends up to 10,000 a second, each a promise chain,
    // an async check and a promise per cursor before (the microtasks were 24 % of the tracker's
    // samples in bench/_ack-path.ts's profile, 8 % after).
    if (message.type === 'ack_messages' && s.pending === 0 && s.info !== undefined && !s.closed) {
      let now: { committed: Promise<void> | undefined } | undefined;
      try {
        now = messages.ackNow(s.caller.userId, message.cursors, message.id !== undefined);
      } catch (err) {
        answerError(s, message, err);
        return;
      }
      if (now !== undefined) {
        answerAck(s, message.id, now.committed);
        return;
      }
    }
    s.pending++;
    s.queue = s.queue.then(async () => {
      try {
        if (!s.closed) await handle(s, message);
      } catch (err) {
        answerError(s, message, err);
      } finally {
        s.pending--;
      }
    });
  };
}

/**
 * At most 32 punches per session in any 10 s: each makes another peer send
 * datagrams to an endpoint the requester named, so a session must not turn
 * seeders into a flood.
 */
class PunchLimit {
  readonly #recent = new WeakMap<Session, number[]>();

  take(s: Session, peerId: string): void {
    const now = Date.now();
    const times = (this.#recent.get(s) ?? []).filter((t) => now - t < 10_000);
    if (times.length >= 32) {
      throw new CoterieError('RATE_LIMITED', `peer ${peerId.slice(0, 12)} asked for too many punches: wait`);
    }
    times.push(now);
    this.#recent.set(s, times);
  }
}
