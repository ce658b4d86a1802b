// The one client of the tracker's real session protocol (/v1/session) for tests
// and benchmarks. SessionClient.connect says hello and keeps pushed messages
// (acknowledged), pipelined sends and receipts: many fit in one process, for
// dozens or hundreds of connected users. SessionClient.open only upgrades and
// queues every frame for next(), for tests that speak the protocol by hand
// (bad frames, hellos of their own, acks). The peer daemon speaks the same.
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { type AckWindow, createAckWindow } from '../../src/peer/messages/ack-window.js';
import type { StoredMessage } from '../../src/protocol/api.js';
import {
  encodeSessionMessage,
  parseTrackerMessage,
  type ReceiptEvent,
  SESSION_PROTOCOL_VERSION,
  type SentMessage,
  type TrackerMessage,
} from '../../src/protocol/session.js';
import { newTimeOrderedId } from '../../src/protocol/streams.js';
import { pinnedConnection } from './tracker-pins.js';

export interface SessionClientOptions {
  /** Acknowledge delivery of every pushed frame (default true). */
  autoAck?: boolean;
  /**
   * Merge the acknowledgements that follow one another within this many ms, as the peer
   * daemon does (PEER_DEFAULTS.deliveryAckWindowMs, src/peer/messages/ack-window.ts);
   * default 0: every frame acknowledged at once.
   */
  ackWindowMs?: number;
  onMessages?: (items: StoredMessage[], receivedAt: number) => void;
  onReceipt?: (r: ReceiptEvent) => void;
  /**
   * Check every frame against the protocol's schemas (default true). Benchmarks
   * with a hundred clients in one process turn it off: there the clients'
   * own checking, not the tracker, would set the figures.
   */
  validate?: boolean;
  /**
   * Ask for the answers to pipelined sends merged per commit (`sent_batch`, the hello's
   * `sentBatches`; default true); false: one `sent` per send.
   */
  sentBatches?: boolean;
  /**
   * Ask for the receipts of one commit merged into one frame (`receipts`, the hello's
   * `receiptBatches`; default true); false: one `receipt` each. Either way `receipts` lists them one by one.
   */
  receiptBatches?: boolean;
}

export interface OpenSessionOptions {
  ca?: string;
  /** Answer the tracker's pings (default true; false to play a peer gone silent). */
  autoPong?: boolean;
}

export class SessionClient {
  readonly received: StoredMessage[] = [];
  readonly receipts: ReceiptEvent[] = [];
  readonly errors: { code: string; message: string }[] = [];
  synced = false;
  /** ack_messages frames sent by the ack window (benchmarks count them per delivery). */
  ackFrames = 0;
  /** Frames that brought receipts (`receipt` or `receipts`). */
  receiptFrames = 0;
  /** Resolves once the socket closed, with its code and reason. */
  readonly closed: Promise<{ code: number; reason: string }>;
  private nextId = 1;
  private readonly waiting = new Map<
    number,
    { resolve: (m: SentMessage) => void; reject: (e: Error) => void }
  >();
  private syncWaiters: (() => void)[] = [];
  /** Every frame not yet taken by next(); only kept by an open()ed client. */
  private readonly inbox: TrackerMessage[] | undefined;
  private inboxWaiters: (() => void)[] = [];
  private readonly acks: AckWindow;

  private constructor(
    readonly userId: string,
    readonly token: string,
    readonly ws: WebSocket,
    private readonly options: SessionClientOptions & { keepInbox?: boolean },
  ) {
    this.inbox = options.keepInbox ? [] : undefined;
    this.acks = createAckWindow(options.ackWindowMs ?? 0, (cursors) => {
      this.ackFrames++;
      this.raw({ type: 'ack_messages', cursors });
    });
    ws.on('message', (data) => this.onFrame(data as Buffer));
    this.closed = new Promise((resolve) =>
      ws.once('close', (code, reason) => {
        for (const w of this.waiting.values())
          w.reject(Object.assign(new Error(`session closed (${code})`), { code: 'CLOSED' }));
        this.waiting.clear();
        for (const w of this.inboxWaiters.splice(0)) w();
        resolve({ code, reason: reason.toString() });
      }),
    );
  }

  /** Upgrades to a session and says hello; resolves once the catch-up is over. */
  static async connect(
    base: string,
    userId: string,
    token: string,
    options: SessionClientOptions = {},
  ): Promise<SessionClient> {
    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/v1/session`, {
      headers: { authorization: `Bearer ${token}` },
      perMessageDeflate: false,
      ...pinnedConnection(base),
    });
    const c = new SessionClient(userId, token, ws, options);
    await SessionClient.upgraded(ws);
    const welcomed = new Promise<void>((resolve) => c.syncWaiters.push(resolve));
    ws.send(
      encodeSessionMessage({
        type: 'hello',
        v: SESSION_PROTOCOL_VERSION,
        id: 0,
        peerId: randomBytes(32).toString('hex'),
        addresses: [],
        seeding: [],
        ...(options.sentBatches === false ? {} : { sentBatches: true as const }),
        ...(options.receiptBatches === false ? {} : { receiptBatches: true as const }),
      }),
    );
    await welcomed;
    return c;
  }

  /**
   * Upgrades to a session (no token: none sent) and says nothing: every frame
   * the tracker sends waits in next(), unchecked and unacknowledged.
   */
  static async open(
    base: string,
    token: string | undefined,
    options: OpenSessionOptions = {},
  ): Promise<SessionClient> {
    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/v1/session`, {
      headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
      ...(options.ca ? { ca: options.ca } : pinnedConnection(base)),
      autoPong: options.autoPong ?? true,
    });
    const c = new SessionClient('', token ?? '', ws, { autoAck: false, validate: false, keepInbox: true });
    await SessionClient.upgraded(ws);
    return c;
  }

  private static upgraded(ws: WebSocket): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    });
  }

  /** The next frame (of one of `type`, when given) an open()ed client received; throws after `timeoutMs`. */
  async next(
    type?: TrackerMessage['type'] | TrackerMessage['type'][],
    timeoutMs = 5_000,
  ): Promise<TrackerMessage> {
    const inbox = this.inbox;
    if (inbox === undefined)
      throw new Error('next() reads the frames of a client made by SessionClient.open');
    const types = type === undefined ? undefined : Array.isArray(type) ? type : [type];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = inbox.findIndex((m) => types === undefined || types.includes(m.type));
      if (i >= 0) return inbox.splice(i, 1)[0]!;
      const left = deadline - Date.now();
      if (left <= 0 || this.ws.readyState === WebSocket.CLOSED) {
        throw new Error(
          `no ${types?.join('|') ?? 'message'} within ${timeoutMs} ms; got ${JSON.stringify(inbox)}`,
        );
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 100));
        this.inboxWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  private onFrame(data: Buffer): void {
    const at = performance.now();
    const msg =
      this.options.validate === false
        ? (JSON.parse(data.toString('utf8')) as ReturnType<typeof parseTrackerMessage>)
        : parseTrackerMessage(data);
    if (this.inbox !== undefined) {
      this.inbox.push(msg);
      for (const w of this.inboxWaiters.splice(0)) w();
    }
    switch (msg.type) {
      case 'messages': {
        for (const m of msg.items) this.received.push(m);
        this.options.onMessages?.(msg.items, at);
        if (this.options.autoAck !== false)
          this.acks.add(msg.items.map((m) => ({ streamId: m.streamId, delivered: m.seq })));
        return;
      }
      case 'synced':
        this.synced = true;
        for (const w of this.syncWaiters.splice(0)) w();
        return;
      case 'receipt':
        this.receiptFrames++;
        this.receipts.push(msg);
        this.options.onReceipt?.(msg);
        return;
      case 'receipts':
        this.receiptFrames++;
        for (const item of msg.items) {
          const r: ReceiptEvent = { type: 'receipt', ...item };
          this.receipts.push(r);
          this.options.onReceipt?.(r);
        }
        return;
      case 'sent': {
        this.settle(msg);
        return;
      }
      case 'sent_batch': {
        for (const item of msg.items) this.settle({ type: 'sent', ...item });
        return;
      }
      case 'error': {
        this.errors.push({ code: msg.code, message: msg.message });
        const w = this.waiting.get(Number(msg.id));
        this.waiting.delete(Number(msg.id));
        w?.reject(Object.assign(new Error(msg.message), { code: msg.code }));
        return;
      }
      default:
        return;
    }
  }

  private settle(answer: SentMessage): void {
    const w = this.waiting.get(Number(answer.id));
    this.waiting.delete(Number(answer.id));
    w?.resolve(answer);
  }

  /** Resolves once the catch-up after hello is over. */
  whenSynced(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((r) => this.syncWaiters.push(r));
  }

  /** Sends a frame as it is: a string unchanged, any object (valid or not: tests send malformed ones on purpose) as JSON. */
  raw(message: object | string): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** Sends over the session; resolves once the tracker committed it. */
  send(
    target: { to: string } | { groupId: string; topic?: string },
    body: string,
    clientId: string = newTimeOrderedId(),
  ): Promise<SentMessage> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.ws.send(encodeSessionMessage({ type: 'send', id, ...target, clientId, body }));
    });
  }

  /** Closes the socket; one the tracker does not close back within 2 s is cut. */
  async close(): Promise<void> {
    this.acks.stop();
    if (this.ws.readyState === WebSocket.CLOSED) return;
    this.ws.close();
    await Promise.race([this.closed, new Promise((r) => setTimeout(r, 2000))]);
    this.ws.terminate();
  }
}
