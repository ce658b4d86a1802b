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
 * The ticket binds for its lifetime only (ticket-guard.ts): a request after
 * its expiry is rejected TICKET_EXPIRED and the connection closed, and so is
 * a connection whose ticket expires without a `ticket` frame renewing it.
 * revokeTickets() drops the connections of a user removed from a group (or
 * who left it) and refuses their old tickets from then on (TICKET_REVOKED).
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
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import type { JSONWebKeySet } from 'jose';
import { definedOnly } from '../core/defined-only.js';
import { Slots } from '../core/slots.js';
import { CoterieError, isCoterieError } from '../protocol/errors.js';
import type { Bandwidth } from './bandwidth.js';
import { BlockPool, type BlockPoolStats } from './block-pool.js';
import { type Clock, realClock } from './clock.js';
import { FramedConnection } from './connection.js';
import { HANDSHAKE_MAX_FRAME_LENGTH, PROTOCOL_VERSION } from './frames.js';
import { type PeerIdentity, peerIdOfSocket, tlsServerOptions } from './identity.js';
import type { PieceSourceLookup } from './piece-source.js';
import { type ServeContext, ServeSession } from './serve-session.js';
import { TicketBinding, TicketGuard, type TicketRevocation } from './ticket-guard.js';

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
  /**
   * Where every timing of the server comes from (handshake, stall, keepalive
   * and idle, ticket deadlines, the key refresh's rate limit): the real clock
   * by default, a fake one in tests.
   */
  clock?: Clock;
  /** For tests: the wall clock tickets are checked against, in seconds. */
  nowSeconds?: () => number;
  /** The daemon's bandwidth limits: each connection's uploads are held to its group's and the global ones. */
  bandwidth?: Bandwidth;
  /** Show downloaders of a complete file a window of its least-shown pieces (spread.ts); default on. */
  spread?: boolean;
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
  spread: true,
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
  /**
   * The tracker revoked a user's tickets in a group: their connections let in
   * with such a ticket close now (TICKET_REVOKED), and such tickets are
   * refused from now on. Returns how many connections were dropped.
   */
  revokeTickets(revocation: TicketRevocation): number;
  /**
   * A file was deleted from a group: the connections let in with a ticket for it in that group
   * close now (FILE_NOT_FOUND). Returns how many were closed.
   */
  dropFile(fileId: string, groupId: string): number;
  /**
   * Serves a connection that reached us over another transport than our
   * listener (a relay circuit; an in-memory pair in tests), `peerId` being
   * the downloader that transport proved: its hello must name it. Counts
   * against maxConnections and ends with close() like any other.
   */
  accept(stream: Duplex, peerId: string): void;
  stats(): PieceServerStats;
  /** Stops listening, closes every connection (UNAVAILABLE) and resolves when all are gone. */
  close(): Promise<void>;
}

const noopLogger: WireLogger = { debug() {}, warn() {} };

export async function startPieceServer(options: PieceServerOptions): Promise<PieceServer> {
  const o = { ...PIECE_SERVER_DEFAULTS, clock: realClock, ...definedOnly(options) };
  const logger = options.logger ?? noopLogger;
  const guard = new TicketGuard({
    jwks: options.jwks,
    refreshJwks: options.refreshJwks,
    jwksRefreshMinIntervalMs: o.jwksRefreshMinIntervalMs,
    logger,
    clock: o.clock,
    nowSeconds: options.nowSeconds,
  });
  const slots = new Slots(o.uploadSlots);
  const connections = new Set<FramedConnection>();
  /** The ticket each authorized connection holds now. */
  const bindings = new Map<FramedConnection, TicketBinding>();
  const handlers = new Set<Promise<void>>();
  const blockPool = new BlockPool({ maxBytes: o.blockPoolBytes });
  const stats = { connections: 0, blocksSent: 0, bytesSent: 0, rejected: 0, corruptReports: 0 };
  const serveContext: ServeContext = { ...o, slots, blockPool, stats, logger };

  async function serve(
    socket: Duplex,
    tlsPeerId: string | null,
    remote: string,
    remoteAddress?: string,
  ): Promise<void> {
    const conn = new FramedConnection(socket, {
      maxFrameLength: HANDSHAKE_MAX_FRAME_LENGTH,
      keepaliveIntervalMs: o.keepaliveIntervalMs,
      idleTimeoutMs: o.idleTimeoutMs,
      clock: o.clock,
    });
    if (connections.size >= o.maxConnections) {
      stats.rejected++;
      await conn.close('BUSY', `this peer serves at most ${o.maxConnections} connections: retry later`);
      return;
    }
    connections.add(conn);
    stats.connections = connections.size;
    const frames = conn[Symbol.asyncIterator]();
    const handshake = o.clock.setTimeout(
      () => void conn.close('PROTOCOL_ERROR', `no hello within ${o.handshakeTimeoutMs} ms`),
      o.handshakeTimeoutMs,
    );
    let session: ServeSession | null = null;
    let binding: TicketBinding | null = null;
    try {
      const first = await frames.next();
      handshake.cancel();
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
      const peerId = tlsPeerId ?? hello.peerId;
      const claims = await guard.check(hello.ticket, { fileId: hello.fileId, peerId });
      const source = options.sources(hello.fileId);
      if (source === undefined) throw new CoterieError('NOT_SHARING', 'this peer does not serve that file');
      if (conn.closed) return;
      logger.debug({ remote, user: claims.user, file: hello.fileId }, 'serving');
      conn.setThrottle(
        options.bandwidth?.link(socket, { groupId: claims.group, gates: 'up', remoteAddress }),
      );
      binding = new TicketBinding(guard, conn, peerId, claims);
      bindings.set(conn, binding);
      session = new ServeSession(conn, source, serveContext);
      session.start(options.identity.peerId, hello.fileId);
      for (;;) {
        const next = await frames.next();
        if (next.done) break;
        const frame = next.value;
        if (frame.type === 'ticket') {
          // Checked before the frames after it: a request sent after a renewal is served under it.
          await binding.renew(frame.ticket);
          continue;
        }
        if (frame.type === 'request' && binding.expired()) {
          const { piece, offset, length } = frame;
          conn.write({
            type: 'reject',
            request: { piece, offset, length },
            code: 'TICKET_EXPIRED',
            reason: '',
          });
          throw new CoterieError('TICKET_EXPIRED', 'the ticket expired: ask the tracker for a new one');
        }
        session.onFrame(frame);
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
      handshake.cancel();
      session?.stop();
      binding?.stop();
      bindings.delete(conn);
      connections.delete(conn);
      stats.connections = connections.size;
    }
  }

  const onSocket = (socket: Duplex, peerId: string | null, remote: string, remoteAddress?: string) => {
    const h = serve(socket, peerId, remote, remoteAddress).catch((err) =>
      logger.warn({ err }, 'piece server connection failed'),
    );
    handlers.add(h);
    void h.finally(() => handlers.delete(h));
  };

  let server: net.Server;
  if (o.plaintext) {
    server = net.createServer((socket) => {
      socket.setNoDelay(true);
      onSocket(socket, null, addressOf(socket), socket.remoteAddress);
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
      onSocket(socket, peerId, addressOf(socket), socket.remoteAddress);
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
    setJwks: (next) => guard.setJwks(next),
    revokeTickets(revocation) {
      guard.revoke(revocation);
      let dropped = 0;
      for (const [conn, b] of bindings) {
        if (!guard.isRevoked(b.claims) || conn.closed) continue;
        dropped++;
        void conn.close(
          'TICKET_REVOKED',
          `'${b.claims.user}' no longer belongs to group '${b.claims.group}': the tracker revoked their tickets`,
        );
      }
      return dropped;
    },
    dropFile(fileId, groupId) {
      let dropped = 0;
      for (const [conn, b] of bindings) {
        if (b.claims.file !== fileId || b.claims.group !== groupId || conn.closed) continue;
        dropped++;
        void conn.close('FILE_NOT_FOUND', `this file was deleted from group '${groupId}'`);
      }
      return dropped;
    },
    accept: (stream, peerId) => onSocket(stream, peerId, `stream from ${peerId.slice(0, 12)}`),
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

function addressOf(socket: net.Socket): string {
  return `${socket.remoteAddress}:${socket.remotePort}`;
}
