import { createBackoff } from '../../../core/backoff.js';
import { CoterieError } from '../../../protocol/errors.js';
import type { Dial, DialTarget, PieceClient } from '../../../wire/index.js';
import { dialPieceClient } from '../../../wire/index.js';
import type { SeederInfo, SeederWhere } from './events.js';
import { SeederLink, type SeederLinksHandlers, type SeederLinksOptions } from './seeder-link.js';
import { TICKET_REFUSALS, TicketRenewal } from './ticket-renewal.js';
import { upgradeSchedule } from './upgrade-schedule.js';

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
  readonly #upgradeSchedule;
  #ticket: string | undefined;

  constructor(o: SeederLinksOptions, handlers: SeederLinksHandlers) {
    this.#o = o;
    this.#h = handlers;
    this.#backoff = createBackoff(o.retry.backoff);
    this.#upgradeSchedule = upgradeSchedule(o.upgrade);
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
      const moved = directPathOf(existing.info) !== directPathOf(seeder);
      existing.info = seeder;
      // New addresses may be what a punch needed: a relayed link tries them now.
      if (moved && existing.relayed && existing.client !== null) this.#upgradeNow(existing);
      this.#revive(existing);
      return;
    }
    const link = new SeederLink(seeder);
    this.#links.set(seeder.peerId, link);
    if (this.#h.started()) this.#connect(link);
  }

  /**
   * The tracker says the seeder's addresses changed (`peer_moved`, issue 19): a link to it uses
   * them now. A relayed one tries a direct path at once (within its attempt budget), one waiting
   * to reconnect dials now instead of at its backoff's end, one given up gets another chance. A
   * link that works directly is left alone. Returns whether this download has a link to it.
   */
  moved(peerId: string, where: SeederWhere): boolean {
    const link = this.#links.get(peerId);
    if (link === undefined || this.#h.finished()) return false;
    const { address, relays, udp } = where;
    const seeder: SeederInfo = {
      peerId,
      score: link.info.score,
      address,
      ...(relays === undefined ? {} : { relays }),
      ...(udp === undefined ? {} : { udp }),
    };
    if (whereOf(seeder) === whereOf(link.info)) return true;
    link.info = seeder;
    this.#h.emit({ type: 'peerMoved', peerId });
    if (link.relayed && link.client !== null) this.#upgradeNow(link);
    else if (link.timer !== null) {
      link.timer.cancel();
      link.timer = null;
      this.#connect(link);
    } else this.#revive(link);
    return true;
  }

  /** A link given up gets another chance (unless the peer is banned or was not who it said). */
  #revive(link: SeederLink): void {
    if (!link.givenUp || this.#h.isBanned(link.info.peerId) || link.lastError?.code === 'PEER_MISMATCH')
      return;
    link.givenUp = false;
    link.failures = 0;
    this.#connect(link);
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
      if (link.relayed) this.#scheduleUpgrade(link);
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
    client.on('bitfield', (b) => current() && this.#h.pieces(link, b));
    client.on('have', (piece) => current() && this.#h.pieces(link, piece));
    client.on('block', (piece, offset, data) => current() && this.#h.block(link, piece, offset, data));
    client.on('rejected', (r, kind) => current() && this.#h.rejected(link, r.piece, kind));
    client.on('close', (error) => this.#onClose(link, client, error));
    client.start();
  }

  /** The link's next upgrade attempt, when upgradeSchedule says (none past `attempts`, none while one dials). */
  #scheduleUpgrade(link: SeederLink): void {
    const { attempts } = this.#o.upgrade;
    if (link.upgrades >= attempts || link.upgradeTimer !== null || link.upgrading) return;
    link.upgradeTimer = this.#o.clock.setTimeout(
      () => {
        link.upgradeTimer = null;
        void this.#upgrade(link);
      },
      this.#upgradeSchedule.delayMs(link.upgrades + 1),
    );
  }

  /**
   * After an attempt: the next one, for the link's relayed client, which may be a newer one than
   * the attempt was for (the relayed connection was lost and made again while it dialled, and its
   * own schedule waited for this attempt to end).
   */
  #scheduleIfRelayed(link: SeederLink): void {
    if (!this.#h.finished() && link.relayed && link.client !== null) this.#scheduleUpgrade(link);
  }

  /** Our own side changed (our public UDP endpoint learned or moved): every relayed link tries a direct path now. */
  retryDirect(): void {
    for (const link of this.#links.values()) if (link.relayed && link.client !== null) this.#upgradeNow(link);
  }

  /**
   * The next attempt brought forward to now (unless one is dialling or none is left). It counts
   * against `attempts` like any other: an endpoint that keeps changing (a symmetric NAT reflected
   * by two relays) cannot make the attempts endless.
   */
  #upgradeNow(link: SeederLink): void {
    if (link.upgrades >= this.#o.upgrade.attempts) return;
    // The attempt dialling went to the addresses of before: the next follows it at once.
    if (link.upgrading) {
      link.upgradeAgain = true;
      return;
    }
    link.upgradeTimer?.cancel();
    link.upgradeTimer = null;
    void this.#upgrade(link);
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
    link.upgrading = true;
    link.upgradeAgain = false;
    let direct: PieceClient;
    try {
      const opened = await this.#dial(link, { ...link.info, directOnly: true });
      direct = opened.client;
      if (opened.relayed) throw new CoterieError('UNAVAILABLE', 'the upgrade went through a relay');
    } catch (err) {
      link.upgrading = false;
      if (link.upgradeAgain && !this.#h.finished() && link.relayed && link.client !== null) {
        link.upgradeAgain = false;
        this.#h.emit({ type: 'peerUpgradeFailed', peerId: link.info.peerId, reason: (err as Error).message });
        this.#upgradeNow(link);
        return;
      }
      this.#scheduleIfRelayed(link);
      this.#h.emit({ type: 'peerUpgradeFailed', peerId: link.info.peerId, reason: (err as Error).message });
      return;
    }
    link.upgrading = false;
    if (this.#h.finished() || link.client !== relayedClient) {
      direct.destroy();
      this.#scheduleIfRelayed(link);
      return;
    }
    this.#attach(link, direct, () => {});
    direct.once('close', () => {
      if (link.client === relayedClient) this.#scheduleUpgrade(link);
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

/** Where a seeder can be reached without a relay: a change may let a failed punch through. */
function directPathOf(s: SeederInfo): string {
  const udp = s.udp === undefined ? '' : `${s.udp.host}:${s.udp.port}`;
  return `${s.address.host}:${s.address.port} ${udp}`;
}

/** Every way to a seeder, as one string: the direct path and the relays. */
function whereOf(s: SeederInfo): string {
  const relays = (s.relays ?? []).map((r) => `${r.host}:${r.port}#${r.fingerprint}`);
  return `${directPathOf(s)} ${relays.join(' ')}`;
}
