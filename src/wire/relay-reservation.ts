import type { TLSSocket } from 'node:tls';
import { CoterieError } from '../protocol/errors.js';
import {
  encodeRelayFrame,
  RELAY_PROTOCOL_VERSION,
  type RelayEndpoint,
  RelayFrameDecoder,
  type RelayServerFrame,
  relayFrameChecks,
} from '../protocol/relay.js';
import { type Clock, realClock } from './clock.js';
import { PathKeepalive, type PathKeepaliveOptions } from './path-keepalive.js';
import { relayHandshake } from './relay-client.js';

/**
 * The reservation's keepalive: a renewal (`reserve`, answered `reserved`) each 15 s, its answer
 * waited for as the round trips say (at least 1 s, at most 10 s), two missed in a row and the
 * relay is taken for gone. TCP's own keepalive cannot see a relay whose process froze (its
 * kernel still acknowledges) nor, for minutes, a path that drops packets without a reset; the
 * renewal doubles as the ping so that every relay, old ones included, answers it.
 */
export const RELAY_KEEPALIVE_DEFAULTS: Readonly<PathKeepaliveOptions> = Object.freeze({
  intervalMs: 15_000,
  timeoutMs: 10_000,
  floorMs: 1_000,
  misses: 2,
});

export interface RelayReservationOptions {
  relay: RelayEndpoint;
  peerId: string;
  /** Read at each renewal: the session token may have changed (a new login). */
  token(): string | undefined;
  /** The relay announced a circuit for us: take it (acceptViaRelay) or let it time out. */
  onIncoming(circuit: string, from: string): void;
  /** The reservation is gone (relay closed, refused a renewal, or expired): reserve again, elsewhere if need be. */
  onClosed(err: CoterieError): void;
  timeoutMs?: number;
  /** The relay answered a renewal or a keepalive ping: the reservation holds for `ttlMs` more. */
  onRenewed?(ttlMs: number): void;
  /** The keepalive's tunables (RELAY_KEEPALIVE_DEFAULTS); false: none (renewals only). */
  keepalive?: Partial<PathKeepaliveOptions> | false;
  /** The keepalive's clock (tests drive it by hand). */
  clock?: Clock;
}

/**
 * One reservation on one relay: the outbound connection a peer behind NAT
 * keeps open so the relay can tell it of circuits. Renewed with `reserve` at
 * 2/3 of the lifetime the relay granted (which also keeps the NAT's mapping
 * alive), and pinged (RELAY_KEEPALIVE_DEFAULTS) so that a relay gone silent ends it;
 * ended by close() or by the relay.
 */
export class RelayReservation {
  readonly relay: RelayEndpoint;
  #socket: TLSSocket | null = null;
  #renew: NodeJS.Timeout | null = null;
  #closed = false;
  #keepalive: PathKeepalive | null = null;
  /**
   * The keepalive nonce of each `reserve` sent and not yet answered, in order (0: a renewal that
   * is no ping): the relay answers them one by one, so the k-th `reserved` answers the k-th.
   */
  readonly #asked: number[] = [];
  readonly #o: RelayReservationOptions;

  private constructor(o: RelayReservationOptions) {
    this.#o = o;
    this.relay = o.relay;
  }

  /** Reserves; rejects with the relay's refusal (RELAY_FORBIDDEN, RELAY_BUSY) or UNAVAILABLE. */
  static async open(o: RelayReservationOptions): Promise<RelayReservation> {
    const token = o.token();
    if (token === undefined) throw new CoterieError('NOT_LOGGED_IN', 'a reservation needs a session');
    const r = new RelayReservation(o);
    const decoder = new RelayFrameDecoder<RelayServerFrame>('server', await relayFrameChecks());
    let ttlMs = 0;
    const socket = await relayHandshake(
      o.relay,
      { t: 'reserve', token, peerId: o.peerId },
      (f) => {
        if (f.t === 'reserved') ttlMs = f.ttlMs;
        return f.t === 'reserved';
      },
      { ...(o.timeoutMs === undefined ? {} : { timeoutMs: o.timeoutMs }) },
    );
    r.#attach(socket, ttlMs, decoder);
    return r;
  }

  #attach(socket: TLSSocket, ttlMs: number, decoder: RelayFrameDecoder<RelayServerFrame>): void {
    this.#socket = socket;
    // Probes after 5 s of quiet: a NAT that forgot the mapping (rebooted, flushed, timed out) makes the
    // next probe leave from a port the relay does not know, which resets the connection and makes us reserve again.
    socket.setKeepAlive(true, 5_000);
    if (this.#o.keepalive !== false) {
      this.#keepalive = new PathKeepalive(
        {
          clock: this.#o.clock ?? realClock,
          ping: (nonce) => {
            // Logged out: the reservation ends now, as at a renewal (#schedule).
            if (this.#o.token() !== undefined) return this.#send(nonce);
            this.#end(new CoterieError('NOT_LOGGED_IN', 'logged out'));
            return false;
          },
          notReading: () => false,
          dead: (reason) =>
            this.#end(new CoterieError('UNAVAILABLE', `the relay stopped answering (${reason})`)),
        },
        { ...RELAY_KEEPALIVE_DEFAULTS, ...this.#o.keepalive },
      );
    }
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const f of decoder.push(chunk)) {
          this.#keepalive?.heard();
          if (f.t === 'incoming') this.#o.onIncoming(f.circuit, f.from);
          else if (f.t === 'reserved') this.#renewed(f.ttlMs);
          else if (f.t === 'refused') this.#end(new CoterieError(f.code, f.message));
        }
      } catch (err) {
        this.#end(CoterieError.from(err, 'PROTOCOL_ERROR', 'bad frame from the relay'));
      }
    });
    socket.on('error', () => {});
    socket.resume();
    socket.once('close', () =>
      this.#end(new CoterieError('UNAVAILABLE', 'the relay closed the reservation')),
    );
    this.#schedule(ttlMs);
    this.#keepalive?.start();
  }

  /** The relay answered a `reserve`: renewed, and if that one was a ping, the keepalive's pong. */
  #renewed(ttlMs: number): void {
    const nonce = this.#asked.shift();
    if (nonce !== undefined && nonce !== 0) this.#keepalive?.pong(nonce);
    this.#schedule(ttlMs);
    this.#o.onRenewed?.(ttlMs);
  }

  /** Sends a `reserve` (a renewal; a ping when `nonce` is not 0); false when it cannot. */
  #send(nonce: number): boolean {
    const token = this.#o.token();
    if (this.#closed || this.#socket === null || this.#socket.destroyed || token === undefined) return false;
    this.#asked.push(nonce);
    this.#socket.write(
      encodeRelayFrame({ t: 'reserve', v: RELAY_PROTOCOL_VERSION, token, peerId: this.#o.peerId }),
    );
    return true;
  }

  #schedule(ttlMs: number): void {
    if (this.#renew) clearTimeout(this.#renew);
    this.#renew = setTimeout(
      () => {
        if (this.#o.token() === undefined || this.#socket === null)
          return this.#end(new CoterieError('NOT_LOGGED_IN', 'logged out'));
        this.check();
      },
      Math.max(1_000, Math.floor((ttlMs * 2) / 3)),
    );
    this.#renew.unref();
  }

  #end(err: CoterieError): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#renew) clearTimeout(this.#renew);
    this.#keepalive?.stop();
    this.#socket?.destroy();
    this.#o.onClosed(err);
  }

  /**
   * Renews now: called when a circuit through this relay broke, a sign the NAT in between changed.
   * Across a NAT that forgot us, the frame leaves from a new port, the relay resets it, and the
   * reservation ends (onClosed), so the peer reserves again at once instead of at the next renewal.
   */
  check(): void {
    this.#send(0);
  }

  /** Ends the reservation (onClosed is not called). */
  close(): void {
    this.#closed = true;
    if (this.#renew) clearTimeout(this.#renew);
    this.#keepalive?.stop();
    this.#socket?.destroy();
  }
}
