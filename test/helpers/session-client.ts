// A lightweight client of the tracker's real session protocol (/v1/session):
// hello, pushed messages with acknowledgements, pipelined sends, receipts.
// Many of them fit in one process, for tests and benchmarks that need dozens
// or hundreds of connected users; the peer daemon speaks the same protocol.
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import type { StoredMessage } from '../../src/protocol/api.js';
import {
  encodeSessionMessage,
  parseTrackerMessage,
  type ReceiptEvent,
  SESSION_PROTOCOL_VERSION,
  type SentMessage,
} from '../../src/protocol/session.js';
import { newTimeOrderedId } from '../../src/protocol/streams.js';

export async function api<T = unknown>(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  token?: string,
): Promise<{ status: number; body: T }> {
  const res = await fetch(base + path, {
    method,
    headers: {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: (text === '' ? undefined : JSON.parse(text)) as T };
}

/** Creates the user (if needed) and logs in; returns the token. */
export async function userToken(
  base: string,
  userId: string,
  password = `${userId}-password`,
): Promise<string> {
  await api(base, 'POST', '/v1/users', { userId, password });
  const r = await api<{ token: string }>(base, 'POST', '/v1/login', { userId, password });
  if (r.status !== 200) throw new Error(`login ${userId}: ${JSON.stringify(r.body)}`);
  return r.body.token;
}

export interface SessionClientOptions {
  /** Acknowledge delivery of every pushed frame (default true). */
  autoAck?: boolean;
  onMessages?: (items: StoredMessage[], receivedAt: number) => void;
  onReceipt?: (r: ReceiptEvent) => void;
  /**
   * Check every frame against the protocol's schemas (default true). Benchmarks
   * with a hundred clients in one process turn it off: there the clients'
   * own checking, not the tracker, would set the figures.
   */
  validate?: boolean;
}

export class SessionClient {
  readonly received: StoredMessage[] = [];
  readonly receipts: ReceiptEvent[] = [];
  readonly errors: { code: string; message: string }[] = [];
  synced = false;
  private nextId = 1;
  private readonly waiting = new Map<
    number,
    { resolve: (m: SentMessage) => void; reject: (e: Error) => void }
  >();
  private syncWaiters: (() => void)[] = [];

  private constructor(
    readonly userId: string,
    readonly token: string,
    private readonly ws: WebSocket,
    private readonly options: SessionClientOptions,
  ) {}

  static async connect(
    base: string,
    userId: string,
    token: string,
    options: SessionClientOptions = {},
  ): Promise<SessionClient> {
    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/v1/session`, {
      headers: { authorization: `Bearer ${token}` },
      perMessageDeflate: false,
    });
    const c = new SessionClient(userId, token, ws, options);
    ws.on('message', (data) => c.onFrame(data as Buffer));
    ws.on('close', (code) => {
      for (const w of c.waiting.values())
        w.reject(Object.assign(new Error(`session closed (${code})`), { code: 'CLOSED' }));
      c.waiting.clear();
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const welcomed = new Promise<void>((resolve) => c.syncWaiters.push(resolve));
    ws.send(
      encodeSessionMessage({
        type: 'hello',
        v: SESSION_PROTOCOL_VERSION,
        id: 0,
        peerId: randomBytes(32).toString('hex'),
        addresses: [],
        seeding: [],
      }),
    );
    await welcomed;
    return c;
  }

  private onFrame(data: Buffer): void {
    const at = performance.now();
    const msg =
      this.options.validate === false
        ? (JSON.parse(data.toString('utf8')) as ReturnType<typeof parseTrackerMessage>)
        : parseTrackerMessage(data);
    switch (msg.type) {
      case 'messages': {
        for (const m of msg.items) this.received.push(m);
        this.options.onMessages?.(msg.items, at);
        if (this.options.autoAck !== false) {
          const upTo = new Map<string, number>();
          for (const m of msg.items) upTo.set(m.streamId, Math.max(upTo.get(m.streamId) ?? 0, m.seq));
          this.raw({
            type: 'ack_messages',
            cursors: [...upTo].map(([streamId, delivered]) => ({ streamId, delivered })),
          });
        }
        return;
      }
      case 'synced':
        this.synced = true;
        for (const w of this.syncWaiters.splice(0)) w();
        return;
      case 'receipt':
        this.receipts.push(msg);
        this.options.onReceipt?.(msg);
        return;
      case 'sent': {
        const w = this.waiting.get(Number(msg.id));
        this.waiting.delete(Number(msg.id));
        w?.resolve(msg);
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

  /** Resolves once the catch-up after hello is over. */
  whenSynced(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((r) => this.syncWaiters.push(r));
  }

  /** Any JSON object, valid or not: tests send malformed messages on purpose. */
  raw(message: object): void {
    this.ws.send(JSON.stringify(message));
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

  close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      this.ws.once('close', () => resolve());
      this.ws.close();
    });
  }
}
