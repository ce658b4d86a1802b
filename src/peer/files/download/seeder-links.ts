import { createBackoff } from '../../../core/backoff.js';
import { Bitfield } from '../../../core/bitfield.js';
import { CoterieError } from '../../../protocol/errors.js';
import type { Clock, ClockTimer, Dial, DialTarget } from '../../../wire/index.js';
import {
  createTlsDial,
  dialPieceClient,
  type PieceClient,
  type PieceClientOptions,
  type RejectKind,
} from '../../../wire/index.js';
import type { DownloadEvent, PeerConnectionState, SeederInfo } from './events.js';
import { DOWNLOAD_DEFAULTS, type DownloadOptions, type RetryPolicy, type UpgradePolicy } from './options.js';
import { TICKET_REFUSALS, TicketRenewal } from './ticket-renewal.js';

/** One seeder of a download: its connection (a piece client) and how its attempts went. */
export class SeederLink {
  state: PeerConnectionState = 'connecting';
  client: PieceClient | null = null;
  /** A dial is under way (client is set only once it succeeds). */
  dialing = false;
  ready = false;
  failures = 0;
  lastError: CoterieError | null = null;
  /** Permanent: banned, refused our ticket, or out of retries. */
  givenUp = false;
  timer: ClockTimer | null = null;
  /** The ticket sent in the hello, and what renews it once the seeder accepted (see ticket-renewal.ts). */
  ticket = '';
  renewal: TicketRenewal | null = null;
  /** The client goes through a relay: a direct path is tried meanwhile (upgrade-attempt count, its timer). */
  relayed = false;
  upgrades = 0;
  upgradeTimer: ClockTimer | null = null;
  /** The relayed client a direct one replaced: its requests in flight still land, then it is closed. */
  draining: PieceClient | null = null;
  constructor(public info: SeederInfo) {}
}

/** What the engine does with what the links see; every call comes from a link's current client. */
export interface SeederLinksHandlers {
  finished(): boolean;
  /** The part file is open: links may connect. */
  started(): boolean;
  isBanned(peerId: string): boolean;
  /** The download ends with this error (a ticket the tracker refuses for good). */
  fail(err: CoterieError): void;
  emit(e: DownloadEvent): void;
  /** `upgraded`: a direct client replaced the link's relayed one (the scheduler keeps the peer and its requests). */
  ready(link: SeederLink, upgraded: boolean): void;
  /** Blocks asked of the seeder and not yet answered. */
  inFlight(link: SeederLink): number;
  pieces(link: SeederLink, pieces: Bitfield | number): void;
  block(link: SeederLink, piece: number, offset: number, data: Buffer): void;
  rejected(link: SeederLink, piece: number, kind: RejectKind): void;
  /** The link's connection is gone: the scheduler forgets the peer. */
  closed(link: SeederLink): void;
  /** A link was given up for good: the download may have no seeder left. */
  givenUp(): void;
  pump(): void;
}

export interface SeederLinksOptions {
  dial: Dial;
  clock: Clock;
  retry: RetryPolicy;
  upgrade: UpgradePolicy;
  connectTimeoutMs: number;
  /** Aborted when the download ends: dials under way stop. */
  signal: AbortSignal;
  ticket?: string | undefined;
  getTicket?: (() => Promise<string>) | undefined;
  /**
   * A file of a folder: the share's pieces `first`… are this download's 0…count-1. Pieces
   * arriving here (bitfields, haves, blocks, refusals) are given in the download's own numbers,
   * others' dropped; the engine numbers what it sends.
   */
  window?: { first: number; count: number } | undefined;
  /** What every piece client of this download says and where its blocks go. */
  client: Omit<PieceClientOptions, 'seederPeerId' | 'ticket' | 'handshakeTimeoutMs' | 'clock'>;
}

/** A download's options as its links use them, the defaults filled in. */
export function seederLinkOptions(
  o: DownloadOptions,
  d: {
    clock: Clock;
    signal: AbortSignal;
    peerId: string;
    pieceCount: number;
    io: PieceClientOptions['io'];
    window: SeederLinksOptions['window'];
  },
): SeederLinksOptions {
  const connectTimeoutMs = o.connectTimeoutMs ?? DOWNLOAD_DEFAULTS.connectTimeoutMs;
  return {
    dial:
      o.dial ?? createTlsDial(o.identity, { plaintext: o.plaintext ?? false, timeoutMs: connectTimeoutMs }),
    clock: d.clock,
    retry: {
      maxAttempts: o.retry?.maxAttempts ?? DOWNLOAD_DEFAULTS.retry.maxAttempts,
      backoff: { ...DOWNLOAD_DEFAULTS.retry.backoff, ...o.retry?.backoff },
    },
    upgrade: { ...DOWNLOAD_DEFAULTS.upgrade, ...o.upgrade },
    connectTimeoutMs,
    signal: d.signal,
    ticket: o.ticket,
    getTicket: o.getTicket,
    window: d.window,
    client: { fileId: o.fileId, peerId: d.peerId, pieceCount: d.pieceCount, io: d.io },
  };
}

/**
 * The seeders of one download: dialling each (a fresh ticket per
 * connection), keeping its ticket renewed, and retrying a lost connection
 * with backoff until it fails for good (a refusal no retry changes, a
 * mismatched peer, or too many attempts in a row without a verified piece).
 */
export class SeederLinks {
  readonly #links = new Map<string, SeederLink>();
  readonly #o: SeederLinksOptions;
  readonly #h: SeederLinksHandlers;
  readonly #backoff;
  #ticket: string | undefined;

  constructor(o: SeederLinksOptions, handlers: SeederLinksHandlers) {
    this.#o = o;
    this.#h = handlers;
    this.#backoff = createBackoff(o.retry.backoff);
    this.#ticket = o.ticket;
  }

  get size(): number {
    return this.#links.size;
  }

  get(peerId: string): SeederLink | undefined {
    return this.#links.get(peerId);
  }

  values(): SeederLink[] {
    return [...this.#links.values()];
  }

  /** A link not given up and not ready: a connection may still bring pieces. */
  anyPending(): boolean {
    return this.values().some((l) => !l.givenUp && l.state !== 'ready');
  }

  add(seeder: SeederInfo): void {
    const existing = this.#links.get(seeder.peerId);
    if (existing) {
      // A seeder the tracker lists again gets another chance (unless banned), at its new address.
      existing.info = seeder;
      if (
        existing.givenUp &&
        !this.#h.isBanned(seeder.peerId) &&
        existing.lastError?.code !== 'PEER_MISMATCH'
      ) {
        existing.givenUp = false;
        existing.failures = 0;
        this.#connect(existing);
      }
      return;
    }
    const link = new SeederLink(seeder);
    this.#links.set(seeder.peerId, link);
    if (this.#h.started()) this.#connect(link);
  }

  /** Connects the links added before the download started. */
  connectWaiting(): void {
    for (const link of this.#links.values()) if (!link.givenUp && !link.timer) this.#connect(link);
  }

  stop(): void {
    for (const link of this.#links.values()) {
      link.timer?.cancel();
      link.timer = null;
      link.upgradeTimer?.cancel();
      link.upgradeTimer = null;
      link.state = 'closed';
      link.renewal?.stop();
      link.client?.close();
      link.draining?.close();
    }
  }

  #connect(link: SeederLink): void {
    if (this.#h.finished() || link.client || link.dialing) return;
    link.dialing = true;
    link.state = link.failures === 0 ? 'connecting' : 'reconnecting';
    void this.#open(link);
  }

  async #open(link: SeederLink): Promise<void> {
    let opened: { client: PieceClient; relayed: boolean };
    try {
      opened = await this.#dial(link, link.info);
    } catch (err) {
      link.dialing = false;
      const e = CoterieError.from(err, 'UNAVAILABLE');
      // The tracker refuses us a ticket (removed from the group): no seeder will take us.
      if (TICKET_REFUSALS.has(e.code)) this.#h.fail(e);
      else this.failed(link, e);
      return;
    } finally {
      link.dialing = false;
    }
    const { client, relayed } = opened;
    if (this.#h.finished()) {
      client.destroy();
      return;
    }
    link.client = client;
    link.relayed = relayed;
    link.upgrades = 0;
    this.#attach(link, client, () => {
      link.ready = true;
      link.state = 'ready';
      this.#renewTickets(link, client);
      this.#h.ready(link, false);
      if (link.relayed) this.#scheduleUpgrade(link, 0);
    });
  }

  /** A piece client to the seeder at `target` with a fresh ticket, and whether its stream goes through a relay. */
  async #dial(link: SeederLink, target: DialTarget): Promise<{ client: PieceClient; relayed: boolean }> {
    const { connectTimeoutMs, clock } = this.#o;
    const timeout = new AbortController();
    const timer = clock.setTimeout(
      () => timeout.abort(new CoterieError('UNAVAILABLE', `no connection within ${connectTimeoutMs} ms`)),
      connectTimeoutMs,
    );
    const signal = AbortSignal.any([this.#o.signal, timeout.signal]);
    let relayed = false;
    const dial: Dial = async (t, s, reads) => {
      const dialed = await this.#o.dial(t, s, reads);
      relayed = dialed.relayed === true;
      return dialed;
    };
    try {
      const ticket = await this.#currentTicket();
      const client = await dialPieceClient(dial, target, signal, {
        ...this.#o.client,
        ticket,
        handshakeTimeoutMs: connectTimeoutMs,
        clock,
      });
      link.ticket = ticket;
      return { client, relayed };
    } finally {
      timer.cancel();
    }
  }

  /** The client's events to the handlers while it is the link's client, or the relayed one draining. */
  #attach(link: SeederLink, client: PieceClient, onReady: () => void): void {
    // Every event of a replaced client is stale: only the link's current one speaks (and one draining).
    const current = () => !this.#h.finished() && (link.client === client || link.draining === client);
    client.on('ready', () => {
      if (!this.#h.finished() && link.client === client) onReady();
    });
    const w = this.#o.window;
    const own = (p: number) =>
      w === undefined ? p : p >= w.first && p < w.first + w.count ? p - w.first : -1;
    client.on('bitfield', (b) => current() && this.#h.pieces(link, w === undefined ? b : windowOf(b, w)));
    client.on('have', (piece) => {
      const p = own(piece);
      if (current() && p >= 0) this.#h.pieces(link, p);
    });
    client.on('block', (piece, offset, data) => {
      if (!current()) return;
      const p = own(piece);
      if (p >= 0) this.#h.block(link, p, offset, data);
      else this.#o.client.io?.freePayload?.(data); // another file's piece of the folder
    });
    client.on('rejected', (r, kind) => {
      const p = own(r.piece);
      if (current() && p >= 0) this.#h.rejected(link, p, kind);
    });
    client.on('close', (error) => this.#onClose(link, client, error));
    client.start();
  }

  #scheduleUpgrade(link: SeederLink, delayMs: number): void {
    if (link.upgrades >= this.#o.upgrade.attempts || link.upgradeTimer !== null) return;
    link.upgradeTimer = this.#o.clock.setTimeout(() => {
      link.upgradeTimer = null;
      void this.#upgrade(link);
    }, delayMs);
  }

  /**
   * Issue 19: a relayed seeder may be reachable directly after all (a punch that failed at first).
   * A direct client that says hello takes the link over; the scheduler keeps the peer (its pieces,
   * its requests, from now on its real rate), and the relayed client's requests in flight still
   * land before it is closed, so nothing verified or asked for is fetched again.
   */
  async #upgrade(link: SeederLink): Promise<void> {
    const relayedClient = link.client;
    if (this.#h.finished() || relayedClient === null || !link.relayed) return;
    link.upgrades++;
    let direct: PieceClient;
    try {
      const opened = await this.#dial(link, { ...link.info, directOnly: true });
      direct = opened.client;
      if (opened.relayed) throw new CoterieError('UNAVAILABLE', 'the upgrade went through a relay');
    } catch (err) {
      if (link.client === relayedClient) this.#scheduleUpgrade(link, this.#o.upgrade.intervalMs);
      this.#h.emit({ type: 'peerUpgradeFailed', peerId: link.info.peerId, reason: (err as Error).message });
      return;
    }
    if (this.#h.finished() || link.client !== relayedClient) {
      direct.destroy();
      return;
    }
    this.#attach(link, direct, () => {});
    direct.once('close', () => {
      if (link.client === relayedClient) this.#scheduleUpgrade(link, this.#o.upgrade.intervalMs);
    });
    direct.once('ready', () => {
      if (this.#h.finished() || link.client !== relayedClient) {
        direct.close();
        return;
      }
      link.renewal?.stop();
      link.client = direct;
      link.relayed = false;
      link.draining = relayedClient;
      this.#renewTickets(link, direct);
      this.#h.ready(link, true);
      this.#drain(link, relayedClient);
    });
  }

  /**
   * Closes the replaced relayed client once it answered every request sent on it (all the
   * scheduler had in flight at the switch: later ones, cancels included, go to the direct
   * client), or once it has been quiet for drainIdleMs (a relay that stopped).
   */
  #drain(link: SeederLink, client: PieceClient): void {
    const { clock } = this.#o;
    let owed = this.#h.inFlight(link);
    let last = clock.now();
    const done = () => {
      if (link.draining !== client) return;
      link.draining = null;
      client.close();
    };
    const answered = () => {
      last = clock.now();
      if (--owed <= 0) done();
    };
    client.on('block', answered);
    client.on('rejected', answered);
    const check = () => {
      if (link.draining !== client) return;
      const idle = clock.now() - last;
      if (idle >= this.#o.upgrade.drainIdleMs || this.#h.finished()) done();
      else clock.setTimeout(check, this.#o.upgrade.drainIdleMs - idle);
    };
    if (owed <= 0) done();
    else clock.setTimeout(check, this.#o.upgrade.drainIdleMs);
  }

  async #currentTicket(): Promise<string> {
    if (this.#o.getTicket) {
      this.#ticket = await this.#o.getTicket();
      return this.#ticket;
    }
    if (this.#ticket === undefined) {
      throw new CoterieError('TICKET_INVALID', 'no download ticket given: ask the tracker for one');
    }
    return this.#ticket;
  }

  /** Renews the connection's ticket over it before it expires, while it lasts. */
  #renewTickets(link: SeederLink, client: PieceClient): void {
    const getTicket = this.#o.getTicket;
    if (getTicket === undefined) return;
    link.renewal = new TicketRenewal({
      getTicket,
      send: (ticket) => {
        // False (and closed, to reconnect with a new one) for a ticket the wire cannot carry.
        if (link.client !== client || this.#h.finished()) return false;
        return client.renewTicket(ticket);
      },
      onRefused: (err) => this.#h.fail(err),
      onRenewed: () => this.#h.emit({ type: 'ticketRenewed', peerId: link.info.peerId }),
      clock: this.#o.clock,
    });
    link.renewal.start(link.ticket);
  }

  #onClose(link: SeederLink, client: PieceClient, error: CoterieError | null): void {
    if (link.draining === client) link.draining = null;
    if (link.client !== client) return;
    link.upgradeTimer?.cancel();
    link.upgradeTimer = null;
    link.renewal?.stop();
    link.renewal = null;
    link.client = null;
    const wasReady = link.ready;
    link.ready = false;
    this.#h.closed(link);
    if (this.#h.finished()) return;
    const err = error ?? new CoterieError('UNAVAILABLE', 'seeder closed the connection');
    if (wasReady) this.#h.emit({ type: 'peerDisconnected', peerId: link.info.peerId, reason: err.message });
    this.failed(link, err);
    this.#h.pump();
  }

  /** A connection attempt or a connection failed: try again later, or give the seeder up. */
  failed(link: SeederLink, err: CoterieError): void {
    if (this.#h.finished()) return;
    link.client = null;
    if (!link.givenUp) link.lastError = err;
    const permanent =
      link.givenUp ||
      err.code === 'PEER_MISMATCH' ||
      // The seeder says it does not serve the file (e.g. it changed there): asking again will not help.
      err.code === 'NOT_SHARING' ||
      err.code === 'TICKET_INVALID' ||
      err.code === 'TICKET_WRONG_FILE' ||
      err.code === 'TICKET_WRONG_PEER' ||
      (err.code === 'TICKET_EXPIRED' && !this.#o.getTicket);
    link.failures++;
    if (permanent || link.failures >= this.#o.retry.maxAttempts) {
      link.givenUp = true;
      link.state = 'closed';
      this.#h.givenUp();
      return;
    }
    link.state = 'reconnecting';
    link.timer = this.#o.clock.setTimeout(() => {
      link.timer = null;
      this.#connect(link);
    }, this.#backoff.delayMs(link.failures));
  }
}

/** A seeder's bitfield of a folder's pieces, as the bits of one file's window. */
function windowOf(b: Bitfield, w: { first: number; count: number }): Bitfield {
  const out = new Bitfield(w.count);
  for (let i = 0; i < w.count; i++) if (b.has(w.first + i)) out.set(i);
  return out;
}
