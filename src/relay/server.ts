/**
 * The relay server (issue 19): keeps reservations for peers that cannot be
 * dialled and splices circuits to them (protocol in protocol/relay.ts).
 *
 * Every connection is TLS 1.3 with the relay's certificate (tls-front.ts),
 * so tokens never cross in clear. Who may do what: every frame carries a session token, checked by the
 * injected `authenticate` (the tracker's own users inside a tracker, the
 * tracker's /v1/whoami for `coterie relay`): no token, no reservation and no
 * circuit (RELAY_FORBIDDEN). A peer id is reserved by one user at a time,
 * and only that user accepts its circuits. The relay never sees a ticket or a
 * piece: the peers' TLS runs inside the circuit, and the seeder checks the
 * downloader's ticket as on a direct connection.
 *
 * Limits (RELAY_BUSY): circuits per relay and per user, reservations per
 * relay; bytes per second per circuit and direction; a reservation's
 * lifetime (renewed by sending `reserve` again).
 *
 * Peers renew often (their keepalive ping is a renewal, every 15 s): a renewal on the
 * connection that holds the reservation, with the token that made it, is not checked again
 * until RENEWAL_RECHECK_MS after the last check, so that a standalone relay does not ask the
 * tracker's whoami for every ping of every peer. A logout still ends it within that time.
 */

import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { createSecureContext, type TLSSocket } from 'node:tls';
import { definedOnly } from '../core/defined-only.js';
import { CoterieError, isCoterieError } from '../protocol/errors.js';
import {
  encodeRelayFrame,
  RELAY_PROTOCOL_VERSION,
  type RelayClientFrame,
  RelayFrameDecoder,
  type RelayServerFrame,
  refusal,
  relayFrameChecks,
} from '../protocol/relay.js';
import { certificateFingerprint } from '../protocol/tracker-url.js';
import { RELAY_DEFAULTS, type RelaySettings } from './config.js';
import { startReflector } from './reflector.js';
import { splice } from './splice.js';
import { acceptTls } from './tls-front.js';

export interface RelayLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface RelayOptions extends Partial<RelaySettings> {
  /**
   * The certificate chain and key (PEM) the relay shows; peers pin the first
   * certificate's SHA-256 (RunningRelay.fingerprint, listed with the relay).
   */
  tls: { cert: string | Buffer; key: string | Buffer };
  /** The user a session token belongs to; throws (any error) for a token that is not valid. */
  authenticate(token: string): Promise<{ userId: string }>;
  logger?: RelayLogger;
  /**
   * Where the UDP reflector binds, when not `host`: a reply must leave from the address the peer
   * sent to (its NAT drops anything else), which a wildcard bind on a host of several addresses
   * does not promise. Falls back to `host` when it cannot bind there.
   */
  reflectHost?: string;
  /** Sees every byte relayed through a circuit (tests check that it is ciphertext). */
  tap?: (chunk: Buffer) => void;
}

export interface RelayStats {
  reservations: number;
  /** Reservations made on a new connection (a peer's first, or its reconnection). */
  reservationsMade: number;
  /** `reserve` frames renewing a reservation on its own connection (peers' keepalive pings). */
  renewals: number;
  circuits: number;
  circuitsOpened: number;
  bytesRelayed: number;
  refused: number;
}

export interface RunningRelay {
  readonly host: string;
  readonly port: number;
  /** SHA-256 (hex) of the relay's certificate: what peers pin, listed as `host:port#sha256=…`. */
  readonly fingerprint: string;
  stats(): RelayStats;
  /** Stops listening and closes every reservation and circuit. */
  close(): Promise<void>;
}

interface Reservation {
  socket: TLSSocket;
  userId: string;
  expiry: NodeJS.Timeout;
  /** The token last checked for it, and when (Date.now()). */
  token: string;
  checkedAt: number;
}

/** How long a reservation's renewals are trusted without checking their token again. */
export const RENEWAL_RECHECK_MS = 60_000;

interface PendingCircuit {
  socket: TLSSocket;
  early: Buffer;
  from: string;
  target: string;
  userId: string;
  timer: NodeJS.Timeout;
}

const noopLogger: RelayLogger = { debug() {}, info() {}, warn() {} };

export async function startRelay(options: RelayOptions): Promise<RunningRelay> {
  const o = { ...RELAY_DEFAULTS, ...definedOnly(options) };
  const logger = options.logger ?? noopLogger;
  const checks = await relayFrameChecks();
  const reservations = new Map<string, Reservation>();
  const pending = new Map<string, PendingCircuit>();
  const circuitsOf = new Map<string, number>();
  const sockets = new Set<net.Socket>();
  const context = createSecureContext({ ...options.tls, minVersion: 'TLSv1.3' });
  const fingerprint = certificateFingerprint(
    typeof options.tls.cert === 'string' ? options.tls.cert : options.tls.cert.toString('utf8'),
  );
  const stats = {
    circuits: 0,
    circuitsOpened: 0,
    bytesRelayed: 0,
    refused: 0,
    reservationsMade: 0,
    renewals: 0,
  };

  const send = (socket: TLSSocket, frame: RelayServerFrame) => {
    if (!socket.destroyed) socket.write(encodeRelayFrame(frame));
  };
  const refuse = (socket: TLSSocket, err: CoterieError) => {
    stats.refused++;
    logger.debug({ code: err.code }, err.message);
    if (!socket.destroyed) socket.end(encodeRelayFrame(refusal(err.code, err.message)));
    setTimeout(() => socket.destroy(), 1000).unref();
  };

  async function userOf(token: string): Promise<string> {
    try {
      return (await options.authenticate(token)).userId;
    } catch (err) {
      throw new CoterieError('RELAY_FORBIDDEN', 'the relay needs a valid session token: log in again', {
        cause: err,
      });
    }
  }

  function circuitCount(userId: string, delta: number): void {
    const n = (circuitsOf.get(userId) ?? 0) + delta;
    if (n <= 0) circuitsOf.delete(userId);
    else circuitsOf.set(userId, n);
    stats.circuits += delta;
  }

  async function reserve(socket: TLSSocket, frame: Extract<RelayClientFrame, { t: 'reserve' }>) {
    const before = reservations.get(frame.peerId);
    const trusted =
      before?.socket === socket &&
      before.token === frame.token &&
      Date.now() - before.checkedAt < RENEWAL_RECHECK_MS;
    const userId = trusted ? before.userId : await userOf(frame.token);
    const checkedAt = trusted ? before.checkedAt : Date.now();
    const held = reservations.get(frame.peerId);
    if (held !== undefined && held.userId !== userId) {
      throw new CoterieError('RELAY_FORBIDDEN', 'another user holds the reservation for this peer id');
    }
    if (held === undefined && reservations.size >= o.maxReservations) {
      throw new CoterieError('RELAY_BUSY', `this relay holds ${o.maxReservations} reservations: try another`);
    }
    if (held !== undefined) {
      clearTimeout(held.expiry);
      // The same peer from a new connection (it reconnected): the old one is stale.
      if (held.socket !== socket) held.socket.destroy();
    }
    const expiry = setTimeout(() => {
      logger.debug({ peer: frame.peerId.slice(0, 12) }, 'reservation expired');
      socket.destroy();
    }, o.reservationTtlMs);
    expiry.unref();
    reservations.set(frame.peerId, { socket, userId, expiry, token: frame.token, checkedAt });
    if (held?.socket === socket) {
      stats.renewals++;
    } else {
      stats.reservationsMade++;
      socket.once('close', () => {
        const r = reservations.get(frame.peerId);
        if (r?.socket !== socket) return;
        clearTimeout(r.expiry);
        reservations.delete(frame.peerId);
      });
    }
    send(socket, { t: 'reserved', expiresAt: Date.now() + o.reservationTtlMs, ttlMs: o.reservationTtlMs });
  }

  async function connect(
    socket: TLSSocket,
    frame: Extract<RelayClientFrame, { t: 'connect' }>,
    early: Buffer,
  ): Promise<void> {
    const userId = await userOf(frame.token);
    const target = reservations.get(frame.target);
    if (target === undefined) {
      throw new CoterieError('UNAVAILABLE', `peer ${frame.target.slice(0, 12)}… holds no reservation here`);
    }
    if (stats.circuits + pending.size >= o.maxCircuits) {
      throw new CoterieError('RELAY_BUSY', `this relay carries ${o.maxCircuits} circuits: try later`);
    }
    if ((circuitsOf.get(userId) ?? 0) >= o.maxCircuitsPerUser) {
      throw new CoterieError(
        'RELAY_BUSY',
        `user '${userId}' holds ${o.maxCircuitsPerUser} circuits on this relay: close some first`,
      );
    }
    const circuit = randomBytes(12).toString('base64url');
    circuitCount(userId, 1);
    const timer = setTimeout(() => {
      if (!pending.delete(circuit)) return;
      circuitCount(userId, -1);
      refuse(socket, new CoterieError('UNAVAILABLE', 'the peer did not take the circuit in time'));
    }, o.acceptTimeoutMs);
    timer.unref();
    pending.set(circuit, { socket, early, from: frame.peerId, target: frame.target, userId, timer });
    socket.once('close', () => {
      const p = pending.get(circuit);
      if (p?.socket !== socket) return;
      clearTimeout(p.timer);
      pending.delete(circuit);
      circuitCount(userId, -1);
    });
    send(target.socket, { t: 'incoming', circuit, from: frame.peerId });
  }

  async function accept(
    socket: TLSSocket,
    frame: Extract<RelayClientFrame, { t: 'accept' }>,
    early: Buffer,
  ): Promise<void> {
    const userId = await userOf(frame.token);
    const p = pending.get(frame.circuit);
    if (p === undefined) throw new CoterieError('UNAVAILABLE', 'no such circuit waits here (it timed out)');
    if (reservations.get(p.target)?.userId !== userId) {
      throw new CoterieError('RELAY_FORBIDDEN', 'only the peer the circuit is for may take it');
    }
    pending.delete(frame.circuit);
    clearTimeout(p.timer);
    stats.circuitsOpened++;
    send(p.socket, { t: 'connected', peer: p.target });
    send(socket, { t: 'connected', peer: p.from });
    if (early.length > 0) p.socket.write(early);
    if (p.early.length > 0) socket.write(p.early);
    logger.debug({ from: p.from.slice(0, 12), to: p.target.slice(0, 12) }, 'circuit open');
    const onBytes = (n: number) => {
      stats.bytesRelayed += n;
    };
    void splice(p.socket, socket, {
      rateBytesPerSec: o.rateBytesPerSec,
      onBytes,
      ...(options.tap === undefined ? {} : { tap: options.tap }),
    }).then(() => circuitCount(p.userId, -1));
  }

  function onConnection(raw: net.Socket): void {
    sockets.add(raw);
    raw.setNoDelay(true);
    raw.once('close', () => sockets.delete(raw));
    raw.on('error', (err) => logger.debug({ err: err.message }, 'relay socket error'));
    acceptTls(raw, context, o.handshakeTimeoutMs, onSecured, (err) => {
      stats.refused++;
      logger.debug({ code: err.code }, err.message);
    });
  }

  function onSecured(socket: TLSSocket): void {
    // TLS's own close listeners, ours, and a circuit's two pipelines pass Node's default warning level of 10.
    socket.setMaxListeners(32);
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', (err) => logger.debug({ err: err.message }, 'relay TLS error'));
    const decoder = new RelayFrameDecoder<RelayClientFrame>('client', checks);
    let kind: RelayClientFrame['t'] | undefined;
    const handshake = setTimeout(() => {
      if (kind === undefined) refuse(socket, new CoterieError('PROTOCOL_ERROR', 'no relay frame in time'));
    }, o.handshakeTimeoutMs);
    handshake.unref();
    let queue = Promise.resolve();
    const onData = (chunk: Buffer) => {
      let frames: RelayClientFrame[];
      try {
        frames = decoder.push(chunk);
      } catch (err) {
        socket.off('data', onData);
        refuse(socket, CoterieError.from(err, 'PROTOCOL_ERROR', 'bad relay frame'));
        return;
      }
      for (const frame of frames) {
        let early: Buffer = Buffer.alloc(0);
        if (frame.t !== 'reserve') {
          // A circuit's connection carries the peers' bytes from here: stop reading frames.
          socket.off('data', onData);
          socket.pause();
          early = decoder.rest();
        }
        queue = queue.then(() => handle(frame, early));
      }
    };
    const handle = async (frame: RelayClientFrame, early: Buffer): Promise<void> => {
      if (socket.destroyed) return;
      try {
        if (frame.v !== RELAY_PROTOCOL_VERSION) {
          throw new CoterieError(
            'PROTOCOL_ERROR',
            `relay protocol ${frame.v} unsupported (${RELAY_PROTOCOL_VERSION})`,
          );
        }
        if (kind !== undefined && !(kind === 'reserve' && frame.t === 'reserve')) {
          throw new CoterieError('PROTOCOL_ERROR', `'${frame.t}' after '${kind}' on one connection`);
        }
        kind = frame.t;
        clearTimeout(handshake);
        if (frame.t === 'reserve') return await reserve(socket, frame);
        if (frame.t === 'connect') await connect(socket, frame, early);
        else await accept(socket, frame, early);
      } catch (err) {
        const e = isCoterieError(err) ? err : new CoterieError('INTERNAL', (err as Error).message);
        if (e.code === 'INTERNAL') logger.warn({ err }, 'relay failure');
        refuse(socket, e);
      }
    };
    socket.on('data', onData);
  }

  const server = net.createServer(onConnection);
  server.maxConnections = o.maxReservations + 2 * o.maxCircuits + 64;
  server.listen(o.port, o.host);
  try {
    await once(server, 'listening');
  } catch (err) {
    throw new CoterieError(
      'UNAVAILABLE',
      `the relay cannot listen on ${o.host}:${o.port}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  server.on('error', (err) => logger.warn({ err }, 'relay listener error'));
  const port = (server.address() as net.AddressInfo).port;
  const warn = (m: string) => logger.warn({}, m);
  const reflector =
    (options.reflectHost === undefined ? undefined : await startReflector(options.reflectHost, port, warn)) ??
    (await startReflector(o.host, port, warn));
  logger.info(
    { host: o.host, port, maxCircuits: o.maxCircuits, rateBytesPerSec: o.rateBytesPerSec },
    'relay started',
  );

  let closing: Promise<void> | undefined;
  return {
    host: o.host,
    port,
    fingerprint,
    stats: () => ({ ...stats, reservations: reservations.size }),
    close() {
      closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const r of reservations.values()) clearTimeout(r.expiry);
        for (const p of pending.values()) clearTimeout(p.timer);
        for (const s of sockets) s.destroy();
        await reflector?.close();
        await stopped;
      })();
      return closing;
    },
  };
}
