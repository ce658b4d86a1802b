/**
 * A peer's UDP endpoint (issue 19, hole punching): one UDP socket that
 * carries reliable, congestion-controlled UDX streams (udx-native, as
 * hyperdht uses) and the few datagrams of protocol/punch.ts around them. A
 * stream opened here is a Node Duplex like a TCP socket: TLS and the wire
 * frames run over it unchanged (udp-dial.ts).
 *
 * UDX has no listen/accept: the dialler sends `open` with its stream id
 * (again every `resendMs`, which also punches its NAT) until the acceptor
 * answers `accept` with its own; both then connect their streams. Anyone may
 * open a stream, as anyone may connect to a TCP listener: TLS and the
 * ticket check decide what it gets.
 */
import { randomBytes } from 'node:crypto';
import { Duplex } from 'node:stream';
import type { default as UDX, UdxAddress, UdxSocket, UdxStream } from 'udx-native';
import { formatHostPort, type HostPort } from '../protocol/addresses.js';
import { CoterieError } from '../protocol/errors.js';
import { decodePunchDatagram, encodePunchDatagram, type PunchDatagram } from '../protocol/punch.js';
import { PacketRun } from './packet-run.js';

export interface UdpEndpointOptions {
  host?: string;
  port?: number;
  /** Streams accepted and not yet closed; further `open`s are ignored. */
  maxStreams?: number;
  /** A stream someone opened to us (its raw bytes: run TLS over it). */
  onStream?: (stream: Duplex, from: HostPort) => void;
}

export const UDP_ENDPOINT_DEFAULTS = Object.freeze({ maxStreams: 256, resendMs: 100, timeoutMs: 5_000 });

/**
 * Punching starts with datagrams that die one hop past our own router: they
 * open our NAT without reaching the other side's before it has opened its own
 * (a Linux router that sees an unasked datagram first keeps a conntrack entry
 * for it, and then maps the other side's outgoing datagrams to another port,
 * so neither gets through). After `ms` both send at the full TTL.
 */
export const PUNCH_LOW_TTL = Object.freeze({ ttl: 2, ms: 400 });

/**
 * The socket's kernel buffers (Linux caps them at net.core.rmem_max and
 * wmem_max). With the default 208 KiB a stream's bursts overflowed the
 * receiver's: a bare UDX stream on loopback sent 37,265 of its ~190,000
 * packets again (1 with 4 MiB), at about two thirds of the rate.
 */
const UDP_SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;

/** How long an accepted `open` is remembered, so a resent one gets the same answer. */
const ACCEPTED_MEMORY_MS = 30_000;

let shared: UDX | undefined;

export class UdpEndpoint {
  readonly #socket: UdxSocket;
  readonly #o: UdpEndpointOptions;
  readonly #ids = new Set<number>();
  /** `${from}/${nonce}` → the stream id we answered with. */
  readonly #accepted = new Map<string, number>();
  /** Waiters for answers and probes, by nonce. */
  readonly #waiters = new Map<string, (d: PunchDatagram, from: HostPort) => void>();
  #streams = 0;
  #closed = false;

  private constructor(socket: UdxSocket, o: UdpEndpointOptions) {
    this.#socket = socket;
    this.#o = o;
    socket.on('message', (msg, from) => this.#onDatagram(msg, from));
  }

  /** Binds a UDP socket (port 0: any). */
  static async open(o: UdpEndpointOptions = {}): Promise<UdpEndpoint> {
    // Loaded with the first endpoint, not with the wire module: its native binding and streamx
    // cost ~25 ms of CPU at every start of a process that never punches (a bare downloader).
    const { default: Udx } = await import('udx-native');
    shared ??= new Udx();
    const socket = shared.createSocket();
    try {
      socket.bind(o.port ?? 0, o.host ?? '0.0.0.0');
    } catch (err) {
      throw new CoterieError('UNAVAILABLE', `cannot bind UDP ${o.port ?? 0}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    try {
      socket.setRecvBufferSize(UDP_SOCKET_BUFFER_BYTES);
      socket.setSendBufferSize(UDP_SOCKET_BUFFER_BYTES);
    } catch {
      // The system's defaults then: slower, not wrong.
    }
    return new UdpEndpoint(socket, o);
  }

  /** The local address the socket is bound to. */
  get address(): HostPort {
    const a = this.#socket.address();
    return { host: a.host, port: a.port };
  }

  /** Sends one datagram (best effort: a lost one is resent by whoever waits for its answer); `ttl`: hops it lives. */
  send(d: PunchDatagram, to: HostPort, ttl?: number): void {
    if (this.#closed) return;
    this.#socket.send(encodePunchDatagram(d), to.port, to.host, ttl).catch(() => {});
  }

  /**
   * Asks `server` (a tracker) where our datagrams come from: our public UDP
   * endpoint behind a NAT. Resends until answered or `timeoutMs`.
   */
  async reflect(
    server: HostPort,
    options: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<HostPort> {
    const n = nonce();
    const d = await this.#exchange(n, [server], () => ({ t: 'reflect', n }), 'reflected', options);
    if (d.t !== 'reflected') throw new CoterieError('INTERNAL', 'unreachable');
    return { host: d.host, port: d.port };
  }

  /**
   * Opens a stream to whoever answers first among `candidates()` (read
   * again at each resend: a probe may have told the caller a better one).
   * `n` names the attempt (a punch's nonce, or a fresh one).
   */
  async openStream(
    candidates: () => HostPort[],
    options: { n?: string; timeoutMs?: number; signal?: AbortSignal; lowTtlFirst?: boolean } = {},
  ): Promise<{ stream: Duplex; remote: HostPort }> {
    const n = options.n ?? nonce();
    const id = this.#newId();
    const stream = shared!.createStream(id);
    try {
      let remote: HostPort | undefined;
      const lowUntil = Date.now() + (options.lowTtlFirst === true ? PUNCH_LOW_TTL.ms : 0);
      const ttl = () => (Date.now() < lowUntil ? PUNCH_LOW_TTL.ttl : undefined);
      const d = await this.#exchange(
        n,
        candidates,
        () => ({ t: 'open', n, id }),
        'accept',
        { ...options, ttl },
        (from) => {
          remote = from;
        },
      );
      if (d.t !== 'accept' || remote === undefined) throw new CoterieError('INTERNAL', 'unreachable');
      stream.connect(this.#socket, d.id, remote.port, remote.host);
      return { stream: asNodeDuplex(stream, () => this.#ids.delete(id)), remote };
    } catch (err) {
      this.#ids.delete(id);
      stream.destroy();
      throw err;
    }
  }

  /** Calls `onProbe` with the source of each probe naming `n` until the returned function is called. */
  watchProbes(n: string, onProbe: (from: HostPort) => void): () => void {
    const key = `probe/${n}`;
    this.#waiters.set(key, (_d, from) => onProbe(from));
    return () => this.#waiters.delete(key);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of this.#socket.streams) s.destroy();
    await this.#socket.close().catch(() => {});
  }

  #onDatagram(msg: Buffer, from: UdxAddress): void {
    const d = decodePunchDatagram(msg);
    if (d === undefined || this.#closed) return;
    const at = { host: from.host, port: from.port };
    switch (d.t) {
      case 'open':
        this.#onOpen(d.n, d.id, at);
        return;
      case 'probe':
        this.#waiters.get(`probe/${d.n}`)?.(d, at);
        return;
      case 'reflect':
        // Peers answer too: a peer with a public address can tell another where it is.
        this.send({ t: 'reflected', n: d.n, host: at.host, port: at.port }, at);
        return;
      default:
        this.#waiters.get(d.n)?.(d, at);
    }
  }

  #onOpen(n: string, remoteId: number, from: HostPort): void {
    const key = `${formatHostPort(from.host, from.port)}/${n}`;
    const known = this.#accepted.get(key);
    if (known !== undefined) {
      this.send({ t: 'accept', n, id: known }, from);
      return;
    }
    const onStream = this.#o.onStream;
    if (onStream === undefined || this.#streams >= (this.#o.maxStreams ?? UDP_ENDPOINT_DEFAULTS.maxStreams))
      return;
    const id = this.#newId();
    const stream = shared!.createStream(id);
    stream.connect(this.#socket, remoteId, from.port, from.host);
    this.#streams++;
    this.#accepted.set(key, id);
    setTimeout(() => this.#accepted.delete(key), ACCEPTED_MEMORY_MS).unref();
    this.send({ t: 'accept', n, id }, from);
    onStream(
      asNodeDuplex(stream, () => {
        this.#streams--;
        this.#ids.delete(id);
      }),
      from,
    );
  }

  /** Sends `make()` to each of `to()` every resendMs until a datagram of type `want` names `n`. */
  #exchange(
    n: string,
    to: HostPort[] | (() => HostPort[]),
    make: () => PunchDatagram,
    want: PunchDatagram['t'],
    options: { timeoutMs?: number; signal?: AbortSignal; ttl?: () => number | undefined },
    onAnswerFrom?: (from: HostPort) => void,
  ): Promise<PunchDatagram> {
    const timeoutMs = options.timeoutMs ?? UDP_ENDPOINT_DEFAULTS.timeoutMs;
    return new Promise((resolve, reject) => {
      const targets = typeof to === 'function' ? to : () => to;
      const fire = () => {
        const ttl = options.ttl?.();
        for (const t of targets()) this.send(make(), t, ttl);
      };
      const finish = (err?: Error, d?: PunchDatagram) => {
        clearInterval(resend);
        clearTimeout(timer);
        this.#waiters.delete(n);
        options.signal?.removeEventListener('abort', onAbort);
        if (err !== undefined) reject(err);
        else resolve(d!);
      };
      const onAbort = () => finish(options.signal?.reason ?? new CoterieError('UNAVAILABLE', 'aborted'));
      const resend = setInterval(fire, UDP_ENDPOINT_DEFAULTS.resendMs);
      const timer = setTimeout(
        () => finish(new CoterieError('UNAVAILABLE', `no UDP answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
      if (options.signal?.aborted) return onAbort();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.set(n, (d, from) => {
        if (d.t !== want) return;
        onAnswerFrom?.(from);
        finish(undefined, d);
      });
      fire();
    });
  }

  #newId(): number {
    let id: number;
    do id = randomBytes(4).readUInt32BE(0) || 1;
    while (this.#ids.has(id));
    this.#ids.add(id);
    return id;
  }
}

/** A fresh nonce for a datagram exchange. */
export function nonce(): string {
  return randomBytes(8).toString('hex');
}

/**
 * A UDX stream (a streamx Duplex) as a Node Duplex, which node:tls wraps:
 * writes wait for its drain, reads pause it when the reader is behind.
 */
function asNodeDuplex(s: UdxStream, onGone: () => void): Duplex {
  let drained: (() => void) | null = null;
  const received = new PacketRun((bytes) => {
    if (!d.push(bytes)) s.pause();
  });
  const d = new Duplex({
    write(chunk: Buffer, _enc, cb) {
      if (s.write(chunk)) return cb();
      drained = () => cb();
    },
    final(cb) {
      s.end();
      cb();
    },
    read() {
      s.resume();
    },
    destroy(err, cb) {
      s.destroy();
      cb(err);
    },
  });
  s.on('drain', () => {
    const f = drained;
    drained = null;
    f?.();
  });
  s.on('data', (chunk: Buffer) => received.add(chunk));
  s.on('end', () => {
    received.flush();
    d.push(null);
  });
  s.on('error', (err: Error) => d.destroy(err));
  s.on('close', () => {
    onGone();
    received.flush();
    d.push(null);
    // A write waiting for a drain that will never come: the stream is gone.
    if (drained !== null) d.destroy(new CoterieError('UNAVAILABLE', 'UDP stream closed'));
  });
  return d;
}
