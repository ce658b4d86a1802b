import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import { RoundTrips } from '../../core/round-trips.js';
import { CoterieError } from '../../protocol/errors.js';
import {
  type ClientMessage,
  encodeSessionMessage,
  type MessagingEvent,
  type PeerMovedEvent,
  type PunchEvent,
  parseTrackerMessage,
  type Reachability,
  SESSION_CLOSE,
  SESSION_PROTOCOL_VERSION,
  type SessionEvent,
  type SessionFeature,
  type TrackerMessage,
  type WelcomeMessage,
} from '../../protocol/session.js';
import { PEER_DEFAULTS } from '../config.js';
import { Heartbeat } from './heartbeat.js';
import type { KnownTracker, TrackerPool } from './pool.js';
import { enableOffered } from './session-features.js';
import { SessionRequests } from './session-requests.js';
import { closeSocket, wsUrl } from './session-socket.js';
import type { TrackerTrust } from './trust.js';

/** What the peer registers on every (re)connect: who it is, where it serves, what it seeds. */
export interface Registration {
  peerId: string;
  addresses: string[];
  seeding: string[];
  /** Files whose seeders it wants to hear about (its running downloads). */
  watching: string[];
}

export interface TrackerSessionOptions {
  pool: TrackerPool;
  getToken: () => string | undefined;
  registration: () => Registration;
  /**
   * The peer's own heartbeat on the session: after `heartbeatIntervalMs` of
   * silence it pings, and `heartbeatTimeoutMs` more of silence means the
   * tracker is lost (then the next one of the pool). The tracker's welcome may
   * announce shorter timings, which then apply. Default 2.5 s + 2.5 s: a
   * tracker silent for 5 s is left.
   */
  heartbeatIntervalMs?: number;
  heartbeatTimeoutMs?: number;
  /**
   * The shortest a pong is waited for, whatever the round trips measured
   * (round-trips.ts); `heartbeatTimeoutMs` is the longest.
   */
  pongFloorMs?: number;
  /** A connect attempt that takes longer is abandoned. */
  connectTimeoutMs?: number;
  /** How wss:// trackers are trusted (a CA, or pinned certificates); none: the system's CAs. */
  trust?: Pick<TrackerTrust, 'webSocketOptions'>;
  /** Told the type of each frame the tracker sends (counting them in tests and diagnostics). */
  observeFrame?: (type: TrackerMessage['type']) => void;
}

export type SessionState = 'idle' | 'connecting' | 'connected' | 'stopped';

export interface TrackerSessionEvents {
  connected: [welcome: WelcomeMessage, url: string];
  disconnected: [url: string, reason: string];
  /** Moved to another tracker of the list. */
  failover: [from: string, to: string];
  /** The cluster's live trackers (learned by the pool too). */
  cluster: [trackers: KnownTracker[]];
  /** The cluster's relays (host:port), as the tracker lists them after welcome and on changes. */
  relays: [relays: string[]];
  /** The tracker's dial-back verdict: in the welcome, and again after an addresses update. */
  reachability: [reachability: Reachability];
  /** The tracker refused the token: the user must log in again. */
  unauthenticated: [reason: string];
  /** A peer is punching a UDP path to us from its endpoint (issue 19): probe it now. */
  punch: [event: PunchEvent];
  /** A seeder's addresses changed (issue 19): downloads with a link to it use the new ones now. */
  peer_moved: [event: PeerMovedEvent];
  event: [event: SessionEvent];
  /** Messages pushed or caught up, the end of catch-up, receipts. */
  messaging: [event: MessagingEvent];
}

const DEFAULT_INTERVAL_MS = PEER_DEFAULTS.sessionHeartbeatIntervalMs;
const DEFAULT_TIMEOUT_MS = PEER_DEFAULTS.sessionHeartbeatTimeoutMs;
const DEFAULT_PONG_FLOOR_MS = PEER_DEFAULTS.sessionPongFloorMs;
const DEFAULT_CONNECT_TIMEOUT_MS = PEER_DEFAULTS.sessionConnectTimeoutMs;
const MAX_IDS_PER_MESSAGE = 4096;

/**
 * The peer's one WebSocket session with a tracker: hello with its
 * registration, heartbeats, pushed events, and on loss a reconnect (to the
 * next tracker of the pool, with jittered backoff) that registers again.
 */
export class TrackerSession extends EventEmitter<TrackerSessionEvents> {
  private ws: WebSocket | undefined;
  private heartbeat: Heartbeat | undefined;
  /** The current connection's round trips: they set its pongs' deadlines. */
  private roundTrips: RoundTrips | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private _state: SessionState = 'idle';
  private _url: string | undefined;
  /** Requests sent, waiting for their answer (rejected when the connection goes). */
  private readonly requests = new SessionRequests();
  /** The session being left for another tracker (a move): closed once the new one is welcomed. */
  private leaving: WebSocket | undefined;
  private _features: readonly SessionFeature[] = [];

  constructor(private readonly options: TrackerSessionOptions) {
    super();
  }

  get state(): SessionState {
    return this._state;
  }

  /** The tracker currently connected, if any. */
  get url(): string | undefined {
    return this._state === 'connected' ? this._url : undefined;
  }

  /** The optional features the current tracker confirmed it switched on (none until it did). */
  get features(): readonly SessionFeature[] {
    return this._state === 'connected' ? this._features : [];
  }

  start(): void {
    if (this._state === 'connecting' || this._state === 'connected') return;
    this._state = 'connecting';
    this.connect();
  }

  /** Drops the connection and stays idle (logout); start() connects again. */
  disconnect(): void {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.teardown('logout');
    this._state = 'idle';
  }

  /** Stops for good (shutdown). */
  stop(): void {
    this._state = 'stopped';
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.teardown('stopped');
  }

  /** Sends a message when connected (it is re-sent as part of the registration after a reconnect anyway). */
  async send(message: Omit<ClientMessage, 'id'>): Promise<void> {
    if (this._state === 'connected') await this.request(message);
  }

  /**
   * Sends a frame that wants no answer (no id: only a failure is answered, and nobody waits for
   * it), for what the peer repeats anyway: acknowledgements, 10,000 a second at 1,000 members.
   * False when no session is up.
   */
  post(message: Omit<ClientMessage, 'id'>): boolean {
    const ws = this.ws;
    if (this._state !== 'connected' || ws === undefined) return false;
    ws.send(encodeSessionMessage(message as ClientMessage));
    return true;
  }

  /**
   * Sends a frame; resolves with its answer (`ack`, `sent`), rejects with the error frame's code,
   * UNAVAILABLE when no session is up, TRACKER_UNAVAILABLE when the connection goes before the
   * answer (acted on or not) or none comes in `timeoutMs` (a hung tracker must not hold a caller).
   */
  request(message: Omit<ClientMessage, 'id'>, timeoutMs?: number): Promise<TrackerMessage> {
    const ws = this.ws;
    if (this._state !== 'connected' || ws === undefined)
      return Promise.reject(new CoterieError('UNAVAILABLE', 'no tracker session'));
    return this.requests.send(
      (id) => ws.send(encodeSessionMessage({ ...message, id } as ClientMessage)),
      timeoutMs,
    );
  }

  announce(files: string[]): Promise<void> {
    return this.sendInChunks('announce', files);
  }

  unannounce(files: string[]): Promise<void> {
    return this.sendInChunks('unannounce', files);
  }

  watch(files: string[]): Promise<void> {
    return this.sendInChunks('watch', files);
  }

  unwatch(files: string[]): Promise<void> {
    return this.sendInChunks('unwatch', files);
  }

  /** The addresses the peer serves on changed (a relay reservation came or went): the tracker re-checks them. */
  setAddresses(addresses: string[]): Promise<void> {
    return this.send({ type: 'addresses', addresses } as Omit<ClientMessage, 'id'>);
  }

  /**
   * Asks the tracker to have peer `peerId` probe our public UDP endpoint
   * (session-punch.ts); resolves once the tracker passed it on.
   * UNAVAILABLE when no session is up.
   */
  punch(peerId: string, endpoint: string, n: string): Promise<void> {
    if (this._state !== 'connected')
      return Promise.reject(new CoterieError('UNAVAILABLE', 'no tracker session'));
    return this.send({ type: 'punch', peerId, endpoint, n } as Omit<ClientMessage, 'id'>);
  }

  private async sendInChunks(
    type: 'announce' | 'unannounce' | 'watch' | 'unwatch',
    files: string[],
  ): Promise<void> {
    for (let i = 0; i < files.length; i += MAX_IDS_PER_MESSAGE) {
      await this.send({ type, files: files.slice(i, i + MAX_IDS_PER_MESSAGE) } as Omit<ClientMessage, 'id'>);
    }
  }

  private connect(): void {
    if (this._state === 'stopped') return;
    const token = this.options.getToken();
    if (token === undefined) {
      this._state = 'idle';
      return;
    }
    const url = this.options.pool.current;
    this._url = url;
    this._state = 'connecting';
    const dialAt = Date.now();
    const roundTrips = new RoundTrips({ floorMs: this.options.pongFloorMs ?? DEFAULT_PONG_FLOOR_MS });
    this.roundTrips = roundTrips;
    const ws = new WebSocket(wsUrl(url), {
      headers: { authorization: `Bearer ${token}` },
      handshakeTimeout: this.options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      ...(this.options.trust === undefined || !url.startsWith('https:')
        ? {}
        : this.options.trust.webSocketOptions(url)),
    });
    this.ws = ws;
    let welcomed = false;
    let lostReason = 'connection closed';

    ws.on('unexpected-response', (_req, res) => {
      lostReason = `HTTP ${res.statusCode}`;
      if (res.statusCode === 401) {
        this.teardown('unauthenticated');
        this._state = 'idle';
        this.emit('unauthenticated', 'the tracker refused the session token');
        return;
      }
      ws.terminate();
    });
    ws.on('open', () => {
      // The handshake (TCP, TLS, the upgrade) is a few round trips: a generous first sample, so a
      // tracker that freezes before the first pong is already judged on this connection's timings.
      roundTrips.sample(Date.now() - dialAt);
      const reg = this.options.registration();
      const hello: ClientMessage = {
        type: 'hello',
        v: SESSION_PROTOCOL_VERSION,
        id: 0,
        peerId: reg.peerId,
        addresses: reg.addresses,
        seeding: reg.seeding.slice(0, MAX_IDS_PER_MESSAGE),
        // Nothing optional asked for here: a tracker older than a hello field refuses the hello
        // (BAD_HELLO). Features are enabled after a welcome that lists them.
      };
      ws.send(encodeSessionMessage(hello));
      this.startHeartbeat(
        ws,
        this.options.heartbeatIntervalMs ?? DEFAULT_INTERVAL_MS,
        this.options.heartbeatTimeoutMs ?? DEFAULT_TIMEOUT_MS,
      );
    });
    ws.on('ping', () => this.heartbeat?.seen());
    ws.on('pong', () => this.heartbeat?.pong());
    ws.on('message', (data, isBinary) => {
      if (ws !== this.ws) return;
      this.heartbeat?.seen();
      if (isBinary) return;
      let msg: ReturnType<typeof parseTrackerMessage>;
      try {
        msg = parseTrackerMessage(data as Buffer);
      } catch {
        return; // a newer tracker's message we do not know: ignore it
      }
      this.options.observeFrame?.(msg.type);
      switch (msg.type) {
        case 'welcome': {
          welcomed = true;
          this._state = 'connected';
          this.closeLeaving();
          this.options.pool.succeeded(url);
          this.startHeartbeat(
            ws,
            Math.min(msg.heartbeatIntervalMs, this.options.heartbeatIntervalMs ?? DEFAULT_INTERVAL_MS),
            Math.min(msg.heartbeatTimeoutMs, this.options.heartbeatTimeoutMs ?? DEFAULT_TIMEOUT_MS),
          );
          // First of the frames after the welcome: our later sends are answered in the new form.
          this._features = [];
          void enableOffered(msg, (m) => this.request(m)).then((f) => {
            if (ws === this.ws) this._features = f;
          });
          const reg = this.options.registration();
          // hello carried the first batch of seeded files; the rest, and watches, follow.
          void this.announce(reg.seeding.slice(MAX_IDS_PER_MESSAGE)).catch(() => {});
          void this.watch(reg.watching).catch(() => {});
          this.emit('connected', msg, url);
          if (msg.reachability !== undefined) this.emit('reachability', msg.reachability);
          return;
        }
        case 'ack':
        case 'sent':
          this.requests.settle(msg.id, msg);
          return;
        case 'error': {
          if (msg.id === 0 || msg.id === undefined) lostReason = `${msg.code}: ${msg.message}`;
          this.requests.settle(msg.id, new CoterieError(msg.code, msg.message));
          return;
        }
        case 'sent_batch':
          for (const item of msg.items) this.requests.settle(item.id, { type: 'sent', ...item });
          return;
        case 'pong':
          return;
        case 'messages':
        case 'synced':
        case 'receipt':
          this.emit('messaging', msg);
          return;
        case 'receipts':
          for (const item of msg.items) this.emit('messaging', { type: 'receipt', ...item });
          return;
        case 'cluster':
          this.options.pool.learn(msg.trackers);
          this.emit('cluster', msg.trackers);
          if (msg.relays !== undefined) this.emit('relays', msg.relays);
          return;
        case 'move':
          this.move(msg.url);
          return;
        case 'punch':
          this.emit('punch', msg);
          return;
        case 'peer_moved':
          this.emit('peer_moved', msg);
          return;
        case 'reachability':
          this.emit('reachability', {
            reachable: msg.reachable,
            ...(msg.address === undefined ? {} : { address: msg.address }),
          });
          return;
        default:
          this.emit('event', msg);
      }
    });
    ws.on('close', (code, reason) => {
      if (ws !== this.ws) return;
      if (code === SESSION_CLOSE.UNAUTHENTICATED) {
        this.teardown('unauthenticated');
        this._state = 'idle';
        this.emit('unauthenticated', reason.toString() || 'the tracker refused the session token');
        return;
      }
      const why = reason.length > 0 ? reason.toString() : `${lostReason} (${code})`;
      this.lost(url, welcomed ? why : `could not connect: ${why}`);
    });
    ws.on('error', (err) => {
      lostReason = (err as NodeJS.ErrnoException).code ?? err.message;
    });
  }

  private startHeartbeat(ws: WebSocket, intervalMs: number, timeoutMs: number): void {
    this.heartbeat?.stop();
    this.heartbeat = new Heartbeat({
      intervalMs,
      timeoutMs,
      ...(this.roundTrips === undefined ? {} : { roundTrips: this.roundTrips }),
      sendPing: () => {
        if (ws.readyState === WebSocket.OPEN) ws.ping();
      },
      onDead: () => {
        if (ws === this.ws) ws.terminate();
      },
    });
    this.heartbeat.start();
  }

  private teardown(reason: string): void {
    this.closeLeaving();
    const ws = this.detach(reason);
    if (ws !== undefined) closeSocket(ws, reason);
  }

  /** Stops listening to the current WebSocket (its frames and close are ignored from now on) and returns it. */
  private detach(reason: string): WebSocket | undefined {
    this.heartbeat?.stop();
    this.heartbeat = undefined;
    const ws = this.ws;
    this.ws = undefined;
    this.requests.failAll(reason);
    return ws;
  }

  /**
   * The tracker asked this session to move to another tracker of the cluster
   * (it is far above the mean load). Make before break: the new session's
   * hello replaces this one's presence row, so seeders never drop out of the
   * listings; the old session stays open until then, its frames ignored (the
   * new session catches up from the cursors). A URL the cluster does not list
   * is ignored.
   */
  private move(url: string): void {
    const from = this._url;
    if (this._state !== 'connected' || from === undefined || !this.options.pool.moveTo(url)) return;
    this.closeLeaving();
    this.leaving = this.detach('moved');
    this._state = 'connecting';
    this.emit('failover', from, this.options.pool.current);
    this.connect();
  }

  private closeLeaving(): void {
    const ws = this.leaving;
    this.leaving = undefined;
    if (ws !== undefined) closeSocket(ws, 'moved');
  }

  private lost(url: string, reason: string): void {
    const wasConnected = this._state === 'connected';
    this.teardown('lost');
    if (this._state === 'stopped') return;
    this._state = 'connecting';
    if (wasConnected) this.emit('disconnected', url, reason);
    const { next, delayMs } = this.options.pool.failed(url);
    if (next !== url) this.emit('failover', url, next);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.connect();
    }, delayMs);
    this.retryTimer.unref();
  }
}
