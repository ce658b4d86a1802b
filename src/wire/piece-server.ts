/**
 * The piece server: serves blocks of the files this peer holds to peers with
 * a valid ticket.
 *
 * Per connection: the first frame must be a hello within handshakeTimeoutMs.
 * Its ticket is verified offline with the cluster's public keys (signature,
 * expiry, the file named in the hello, and the connecting certificate's
 * fingerprint as the ticket's peer) before anything about the file is
 * revealed. Then the server sends its hello, its bitfield and a have per new
 * piece, and answers requests in any order with piece frames, or request
 * rejects (PIECE_OUT_OF_RANGE, PIECE_UNAVAILABLE, BUSY when the client
 * pipelines more than maxQueuedRequestsPerConnection). A file that changed ends with NOT_SHARING.
 *
 * Memory: frames from the client are capped at the handshake size (a client
 * never needs to send a block here), each connection has at most
 * maxBlocksInFlightPerConnection blocks read and not yet flushed, and
 * uploadSlots bounds the blocks in flight across all connections, handed out
 * first come first served so one greedy client cannot starve the others.
 * Blocks are read into buffers lent by a BlockPool (at most blockPoolBytes)
 * and given back by the socket write's callback, so a steady upload
 * allocates nothing.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { JSONWebKeySet } from 'jose';
import { Slots } from '../core/slots.js';
import { CoterieError, isCoterieError } from '../protocol/errors.js';
import { pieceLength } from '../protocol/manifest.js';
import { type TicketClaims, verifyTicket } from '../protocol/tickets.js';
import { type BlockLease, BlockPool, type BlockPoolStats } from './block-pool.js';
import { FramedConnection } from './connection.js';
import { takeCorruptReport } from './corrupt-reports.js';
import {
  type BlockRef,
  encodePieceFrameInPlace,
  type Frame,
  HANDSHAKE_MAX_FRAME_LENGTH,
  type HelloFrame,
  PIECE_FRAME_PREFIX_BYTES,
  PROTOCOL_VERSION,
} from './frames.js';
import { type PeerIdentity, peerIdOfSocket, tlsServerOptions } from './identity.js';
import type { PieceSource, PieceSourceLookup } from './piece-source.js';

/** The least a logger must do (pino's Logger fits). */
export interface WireLogger {
  debug(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface PieceServerOptions {
  identity: PeerIdentity;
  /** Which files this peer serves. */
  sources: PieceSourceLookup;
  /** The tracker cluster's public keys, as served at /v1/cluster/keys. */
  jwks: JSONWebKeySet;
  /**
   * Fetches the keys again when a ticket fails to verify (the cluster may
   * have rotated its key); at most once per jwksRefreshMinIntervalMs.
   */
  refreshJwks?: () => Promise<JSONWebKeySet>;
  /** Default 0.0.0.0 (other peers must reach it); tests pass 127.0.0.1. */
  host?: string;
  /** Default 0: an ephemeral port, read it from the result. */
  port?: number;
  /** No TLS, peer ids taken from hellos unverified. Only for measuring the cost of TLS. */
  plaintext?: boolean;
  maxConnections?: number;
  maxQueuedRequestsPerConnection?: number;
  maxBlocksInFlightPerConnection?: number;
  uploadSlots?: number;
  /** The most bytes of block buffers kept for reuse (lent and free); past it blocks get fresh buffers. */
  blockPoolBytes?: number;
  handshakeTimeoutMs?: number;
  /** A block not taken by the peer's socket within this long: the peer stalls, close it (frees its slots). */
  stallTimeoutMs?: number;
  keepaliveIntervalMs?: number;
  idleTimeoutMs?: number;
  jwksRefreshMinIntervalMs?: number;
  logger?: WireLogger;
  /** For tests: the clock tickets are checked against, in seconds. */
  nowSeconds?: () => number;
}

export const PIECE_SERVER_DEFAULTS = Object.freeze({
  host: '0.0.0.0',
  port: 0,
  plaintext: false,
  // Enough for every member of a large group downloading at once; each costs a socket and a few KiB.
  maxConnections: 64,
  // A downloader keeping 16 MiB in flight at 256 KiB blocks needs 64; more is a client bug.
  maxQueuedRequestsPerConnection: 128,
  // Blocks being read from disk or flushed to the socket at once: measured on loopback TLS with
  // 256 KiB blocks, 4 moved ~25 % more than 2 (the disk read and the socket no longer wait on
  // each other) for at most 4 MiB per connection.
  maxBlocksInFlightPerConnection: 4,
  // Blocks in flight across all connections: 32 × ≤ 1 MiB bounds the server's block memory.
  uploadSlots: 32,
  // Downloaders ask for one block per piece up to 1 MiB (512 KiB for a 1 GiB file), each lent
  // with room for its frame header: 16 MiB covers every upload slot at 512 KiB; at 1 MiB, blocks
  // past 16 lent at once get fresh buffers (the pool never stalls a transfer). Kept small because
  // a seeding daemon keeps what its pool owns.
  blockPoolBytes: 16 * 1024 * 1024,
  handshakeTimeoutMs: 10_000,
  // 1 MiB not drained in 30 s is under 35 KB/s: a reader that stopped, holding upload slots.
  stallTimeoutMs: 30_000,
  keepaliveIntervalMs: 15_000,
  idleTimeoutMs: 60_000,
  jwksRefreshMinIntervalMs: 30_000,
});

export interface PieceServerStats {
  connections: number;
  blocksSent: number;
  bytesSent: number;
  rejected: number;
  /** Corrupt frames received: downloaders saying a piece we sent failed its hash. */
  corruptReports: number;
  /** The block buffer pool: `leased` returns to 0 once no block is being read or written. */
  blockPool: BlockPoolStats;
}

export interface PieceServer {
  /** The port listened on (useful with port 0). */
  readonly port: number;
  /** Replaces the cluster keys (e.g. after the daemon fetched new ones). */
  setJwks(jwks: JSONWebKeySet): void;
  stats(): PieceServerStats;
  /** Stops listening, closes every connection (UNAVAILABLE) and resolves when all are gone. */
  close(): Promise<void>;
}

const noopLogger: WireLogger = { debug() {}, warn() {} };

export async function startPieceServer(options: PieceServerOptions): Promise<PieceServer> {
  const o = { ...PIECE_SERVER_DEFAULTS, ...definedOnly(options) };
  const logger = options.logger ?? noopLogger;
  const now = options.nowSeconds;
  let jwks = options.jwks;
  let lastRefreshMs = 0;
  const slots = new Slots(o.uploadSlots);
  const connections = new Set<FramedConnection>();
  const handlers = new Set<Promise<void>>();
  const blockPool = new BlockPool({ maxBytes: o.blockPoolBytes });
  const stats = { connections: 0, blocksSent: 0, bytesSent: 0, rejected: 0, corruptReports: 0 };

  async function checkTicket(hello: HelloFrame, peerId: string): Promise<TicketClaims> {
    const expect = { fileId: hello.fileId, peerId, ...(now === undefined ? {} : { nowSeconds: now() }) };
    try {
      return await verifyTicket(hello.ticket, jwks, expect);
    } catch (err) {
      const refresh = options.refreshJwks;
      if (
        !isCoterieError(err, 'TICKET_INVALID') ||
        refresh === undefined ||
        Date.now() - lastRefreshMs < o.jwksRefreshMinIntervalMs
      ) {
        throw err;
      }
      lastRefreshMs = Date.now();
      try {
        jwks = await refresh();
      } catch (refreshErr) {
        // The tracker being unreachable does not make the ticket valid: refuse with the ticket's error.
        logger.warn({ err: refreshErr }, 'cannot refresh the cluster keys');
        throw err;
      }
      return await verifyTicket(hello.ticket, jwks, expect);
    }
  }

  async function serve(socket: net.Socket, tlsPeerId: string | null): Promise<void> {
    const conn = new FramedConnection(socket, {
      maxFrameLength: HANDSHAKE_MAX_FRAME_LENGTH,
      keepaliveIntervalMs: o.keepaliveIntervalMs,
      idleTimeoutMs: o.idleTimeoutMs,
    });
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    if (connections.size >= o.maxConnections) {
      stats.rejected++;
      await conn.close('BUSY', `this peer serves at most ${o.maxConnections} connections: retry later`);
      return;
    }
    connections.add(conn);
    stats.connections = connections.size;
    const frames = conn[Symbol.asyncIterator]();
    const handshake = setTimeout(
      () => void conn.close('PROTOCOL_ERROR', `no hello within ${o.handshakeTimeoutMs} ms`),
      o.handshakeTimeoutMs,
    );
    handshake.unref();
    let session: Session | null = null;
    try {
      const first = await frames.next();
      clearTimeout(handshake);
      if (first.done) return;
      if (first.value.type !== 'hello')
        throw new CoterieError('PROTOCOL_ERROR', 'the first frame must be hello');
      const hello = first.value;
      if (hello.version !== PROTOCOL_VERSION) {
        throw new CoterieError(
          'PROTOCOL_ERROR',
          `protocol version ${hello.version} unsupported (${PROTOCOL_VERSION})`,
        );
      }
      if (tlsPeerId !== null && hello.peerId !== tlsPeerId) {
        throw new CoterieError('PEER_MISMATCH', 'the hello names another peer than the certificate');
      }
      const claims = await checkTicket(hello, tlsPeerId ?? hello.peerId);
      const source = options.sources(hello.fileId);
      if (source === undefined) throw new CoterieError('NOT_SHARING', 'this peer does not serve that file');
      if (conn.closed) return;
      logger.debug({ remote, user: claims.user, file: hello.fileId }, 'serving');
      session = new Session(conn, source);
      session.start(options.identity.peerId, hello.fileId);
      for (;;) {
        const next = await frames.next();
        if (next.done) break;
        session.onFrame(next.value);
      }
    } catch (err) {
      stats.rejected++;
      const e = isCoterieError(err)
        ? err
        : new CoterieError('INTERNAL', `piece server failure: ${(err as Error).message}`, { cause: err });
      if (e.code === 'INTERNAL') logger.warn({ err, remote }, 'piece server failure');
      else logger.debug({ remote, code: e.code }, e.message);
      await conn.close(e.code, e.message);
    } finally {
      clearTimeout(handshake);
      session?.stop();
      connections.delete(conn);
      stats.connections = connections.size;
    }
  }

  /** One authorized connection serving one file. */
  class Session {
    readonly #queue: BlockRef[] = [];
    #inFlight = 0;
    #stopped = false;
    #fileId = '';
    /** Blocks handed to the socket whose write has not called back yet. */
    readonly #writing = new Set<BlockLease>();
    readonly #onHave = (piece: number) => {
      if (!this.conn.closed) this.conn.write({ type: 'have', piece });
    };

    constructor(
      readonly conn: FramedConnection,
      readonly source: PieceSource,
    ) {
      // A destroyed socket does not call back the writes still queued in it (Node's Duplex
      // destroy skips them), but once it has emitted 'close' its handle is closed and no native
      // code reads our buffers any more: give them all back. A late callback then does nothing.
      conn.stream.once('close', () => {
        for (const lease of this.#writing) lease.release();
        this.#writing.clear();
      });
    }

    start(peerId: string, fileId: string): void {
      this.#fileId = fileId;
      this.conn.write({ type: 'hello', version: PROTOCOL_VERSION, fileId, peerId, ticket: '' });
      // Snapshot and subscribe in the same tick: no piece can fall between the two.
      this.conn.write({ type: 'bitfield', bitfield: this.source.bitfield.clone() });
      this.source.on('have', this.#onHave);
    }

    stop(): void {
      this.#stopped = true;
      this.#queue.length = 0;
      this.source.off('have', this.#onHave);
    }

    onFrame(frame: Frame): void {
      switch (frame.type) {
        case 'request':
          this.#onRequest(frame);
          return;
        case 'cancel': {
          const i = this.#queue.findIndex(
            (r) => r.piece === frame.piece && r.offset === frame.offset && r.length === frame.length,
          );
          if (i >= 0) this.#queue.splice(i, 1);
          return;
        }
        case 'corrupt':
          takeCorruptReport(frame, this.#fileId, this.source);
          stats.corruptReports++;
          return;
        case 'keepalive':
        case 'have':
        case 'bitfield':
        case 'reject':
          // A downloader's own pieces are served by its own server; a reject from it needs no answer.
          return;
        default:
          throw new CoterieError('PROTOCOL_ERROR', `unexpected ${frame.type} frame from a downloader`);
      }
    }

    #onRequest(r: BlockRef): void {
      const { manifest, bitfield } = this.source;
      const request = { piece: r.piece, offset: r.offset, length: r.length };
      if (r.piece >= manifest.pieces.length || r.offset + r.length > pieceLength(manifest, r.piece)) {
        this.#reject(request, 'PIECE_OUT_OF_RANGE', 'block outside the file');
      } else if (!bitfield.has(r.piece)) {
        this.#reject(request, 'PIECE_UNAVAILABLE', 'piece not held');
      } else if (this.#queue.length >= o.maxQueuedRequestsPerConnection) {
        this.#reject(request, 'BUSY', `at most ${o.maxQueuedRequestsPerConnection} requests queued`);
      } else {
        this.#queue.push(request);
        this.#pump();
      }
    }

    /** Waits for the socket to take what was written; a peer that stops reading is closed. */
    async #drain(): Promise<void> {
      const stalled = setTimeout(
        () => void this.conn.close('UNAVAILABLE', `block not taken within ${o.stallTimeoutMs} ms`),
        o.stallTimeoutMs,
      );
      stalled.unref();
      try {
        await this.conn.drain();
      } finally {
        clearTimeout(stalled);
      }
    }

    #reject(request: BlockRef, code: 'PIECE_OUT_OF_RANGE' | 'PIECE_UNAVAILABLE' | 'BUSY', reason: string) {
      if (!this.conn.closed) this.conn.write({ type: 'reject', request, code, reason });
    }

    #pump(): void {
      while (!this.#stopped && this.#queue.length > 0 && this.#inFlight < o.maxBlocksInFlightPerConnection) {
        this.#inFlight++;
        void this.#serveNext().finally(() => {
          this.#inFlight--;
          this.#pump();
        });
      }
    }

    async #serveNext(): Promise<void> {
      await slots.acquire();
      try {
        // Taken after the slot: a cancel that arrived while waiting still applies.
        const r = this.#queue.shift();
        if (r === undefined || this.#stopped) return;
        // The block is read just past room for the frame's header, so the frame leaves as one buffer.
        const lease = blockPool.lease(PIECE_FRAME_PREFIX_BYTES + r.length);
        const into = lease.buffer.subarray(PIECE_FRAME_PREFIX_BYTES);
        // Once the socket has the block, only its write callback gives the buffer back: the kernel
        // or the TLS layer may read it until then, even after this connection failed.
        let handedOver = false;
        try {
          let data: Buffer;
          try {
            data = await this.source.read(r.piece, r.offset, r.length, into);
          } catch (err) {
            if (isCoterieError(err, 'NOT_SHARING')) {
              void this.conn.close(err.code, err.message);
              return;
            }
            logger.warn({ err, piece: r.piece }, 'piece read failed');
            this.#reject(r, 'PIECE_UNAVAILABLE', 'cannot read that piece now');
            return;
          }
          if (this.#stopped || this.conn.closed) return;
          let ok: boolean;
          if (data === into) {
            encodePieceFrameInPlace(lease.buffer, r.piece, r.offset);
            ok = this.conn.writeEncoded(lease.buffer, () => {
              this.#writing.delete(lease);
              lease.release();
            });
            this.#writing.add(lease);
          } else {
            // A source that read into a buffer of its own: ours is free now, the write needs no callback.
            lease.release();
            ok = this.conn.write({ type: 'piece', piece: r.piece, offset: r.offset, data });
          }
          handedOver = true;
          if (!ok) await this.#drain();
          stats.blocksSent++;
          stats.bytesSent += data.length;
        } finally {
          if (!handedOver) lease.release();
        }
      } catch (err) {
        // The connection closed while sending: its handler cleans up.
        if (!isCoterieError(err, 'UNAVAILABLE')) logger.warn({ err }, 'piece send failed');
      } finally {
        slots.release();
      }
    }
  }

  const onSocket = (socket: net.Socket, peerId: string | null) => {
    const h = serve(socket, peerId).catch((err) => logger.warn({ err }, 'piece server connection failed'));
    handlers.add(h);
    void h.finally(() => handlers.delete(h));
  };

  let server: net.Server;
  if (o.plaintext) {
    server = net.createServer((socket) => {
      socket.setNoDelay(true);
      onSocket(socket, null);
    });
  } else {
    const tlsOptions = { ...tlsServerOptions(options.identity), handshakeTimeout: o.handshakeTimeoutMs };
    server = tls.createServer(tlsOptions, (socket) => {
      socket.setNoDelay(true);
      let peerId: string;
      try {
        peerId = peerIdOfSocket(socket);
      } catch {
        socket.destroy();
        return;
      }
      onSocket(socket, peerId);
    });
    // Failed handshakes (scanners, garbage) are the client's problem, never ours.
    server.on('tlsClientError', (err) => logger.debug({ err: err.message }, 'TLS handshake failed'));
  }
  // A hard cap on sockets, handshakes included; past maxConnections authenticated peers get BUSY.
  server.maxConnections = o.maxConnections * 2;
  server.on('error', (err) => logger.warn({ err }, 'piece server socket error'));
  // Every raw socket, so close() can end those still in their TLS handshake.
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch((err: Error) => {
    throw new CoterieError('UNAVAILABLE', `cannot listen on ${o.host}:${o.port}: ${err.message}`, {
      cause: err,
    });
  });
  const port = (server.address() as net.AddressInfo).port;

  let closing: Promise<void> | null = null;
  return {
    port,
    setJwks(next) {
      jwks = next;
    },
    stats: () => ({ ...stats, blockPool: blockPool.stats() }),
    close() {
      closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        await Promise.all([...connections].map((c) => c.close('UNAVAILABLE', 'the peer is shutting down')));
        await Promise.all([...handlers]);
        for (const s of sockets) s.destroy();
        await stopped;
      })();
      return closing;
    },
  };
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
