import pg from 'pg';
import type { Logger } from 'pino';
import { type Backoff, createStepBackoff, LISTEN_RECONNECT_STEPS_MS } from '../../core/index.js';
import type { EventBus, TrackerEvent, TrackerEventHandler } from './bus.js';
import { UnsentEvents } from './unsent-events.js';

/**
 * The cluster's event bus: PostgreSQL LISTEN/NOTIFY. An event is delivered to
 * this tracker's subscribers at once (as the local bus does) and sent to the
 * other trackers over one NOTIFY channel. Payloads stay small: events carry
 * ids, and receivers read the rows they need from the shared store.
 *
 * Order: one connection sends every NOTIFY of this tracker, in publish order,
 * so the others see its events in order. Events published together travel
 * together (several per payload, up to PostgreSQL's 8000-byte cap).
 *
 * Loss: a tracker that loses its listening connection reconnects with
 * backoff; events sent meanwhile are missed. Once listening again, the bus
 * hands its own subscribers an `events_lost` event: they read the store
 * again (the sessions catch up from their cursors, caches are dropped); the
 * read caches' TTL bounds the rest (DESIGN.md: the store is the truth). A
 * NOTIFY that fails is sent again on a new connection, in order. When a whole
 * round of tries fails, its events are not dropped: they wait in a bounded
 * backlog (unsent-events.ts: `messages_stored` ranges merged per stream) with
 * what is published after them, and the round is tried again after a step of
 * the reconnect table (at most 2 s) until it goes. So a reader on another
 * tracker hears of a committed message at most 2 s, plus one round, after
 * PostgreSQL takes a NOTIFY again; a backlog past its bound is sent as
 * `events_lost`, and the others read the store again.
 *
 * Commits: a NOTIFY's transaction holds PostgreSQL's database-wide notify lock
 * until it ends. The notify connection commits without waiting for its commit
 * record's flush (synchronous_commit off): the lock is held for microseconds,
 * not an fsync, and the trackers' durable commits (which NOTIFY nothing) never
 * queue behind it. A NOTIFY carries no data to lose: what it announces is
 * already committed, and a crash loses the notification whatever its commit.
 */
export const EVENTS_CHANNEL = 'coterie_events';
/**
 * Tries of a NOTIFY: the next ones on a new connection, to the primary of the moment (each
 * waits a few seconds for one: a failover of the store is not a reason to drop the push).
 */
const NOTIFY_ATTEMPTS = 3;
/**
 * Fault injection for the cluster tests: the first N NOTIFYs that carry a `messages_stored`
 * event fail as a broken connection would (N = 3 is a whole round of NOTIFY_ATTEMPTS).
 */
let announcementsToRefuse = Number(process.env.COTERIE_FAULT_REFUSE_ANNOUNCE ?? 0) || 0;
const refuseNotify = (events: readonly TrackerEvent[]) =>
  announcementsToRefuse > 0 &&
  events.some((e) => e.kind === 'messages_stored') &&
  announcementsToRefuse-- > 0;
/** PostgreSQL refuses NOTIFY payloads of 8000 bytes or more. */
const MAX_PAYLOAD_BYTES = 7900;

interface Envelope {
  /** The publishing tracker: it delivered these itself. */
  o: string;
  e: TrackerEvent[];
}

/**
 * A payload heard on the channel, if it is a tracker's envelope. Anyone with
 * the database's rights can NOTIFY: what is not JSON, not an envelope, or not
 * an event (no kind) is dropped here rather than handed to the handlers.
 */
function readEnvelope(payload: string): Envelope | undefined {
  let v: unknown;
  try {
    v = JSON.parse(payload);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const { o, e } = v as { o?: unknown; e?: unknown };
  if (typeof o !== 'string' || !Array.isArray(e)) return undefined;
  const events = e.filter(
    (x): x is TrackerEvent =>
      typeof x === 'object' && x !== null && typeof (x as { kind?: unknown }).kind === 'string',
  );
  return { o, e: events };
}

/** The current primary to connect to, and the call that says a connection to it was lost. */
export type PgConnectionSource = () => Promise<{ config: pg.ClientConfig; lost: () => void }>;

export interface PgEventBusOptions {
  /**
   * A single-host URL, or the store's primary (which follows a failover: a lost listener
   * reconnects to the new primary, and the sessions catch up as after any lost listener).
   */
  connection: string | PgConnectionSource;
  trackerId: string;
  logger: Logger;
  /** The listener's reconnect policy, by failures since it last listened (injectable, like the peer's pool). */
  reconnect?: Backoff;
}

export async function createPgEventBus(options: PgEventBusOptions): Promise<EventBus> {
  const { trackerId, logger } = options;
  const source: PgConnectionSource =
    typeof options.connection === 'string'
      ? ((url) => async () => ({ config: { connectionString: url }, lost: () => {} }))(options.connection)
      : options.connection;
  // No jitter, as before: a handful of trackers, and the first steps are short.
  const reconnect = options.reconnect ?? createStepBackoff({ stepsMs: LISTEN_RECONNECT_STEPS_MS, jitter: 0 });
  const handlers = new Set<TrackerEventHandler>();
  let closed = false;

  const deliver = (event: TrackerEvent) => {
    for (const h of handlers) {
      try {
        h(event);
      } catch (err) {
        logger.error({ err, kind: event.kind }, 'event handler failed');
      }
    }
  };

  // ---------------------------------------------------------------- listening
  let listener: pg.Client | undefined;
  let reconnectTimer: NodeJS.Timeout | undefined;
  /** Failed tries since the listener last listened, the loss itself included. */
  let failures = 0;

  /** Listening once before: a reconnect means events may have been missed. */
  let listenedBefore = false;

  async function listen(): Promise<void> {
    // Named, so that an operator (or a test) can tell the cluster's connections apart.
    const { config, lost: primaryLost } = await source();
    const client = new pg.Client({
      ...config,
      keepAlive: true,
      application_name: `coterie-listen-${trackerId}`,
    });
    // This tracker's own envelopes come back too: told apart by their start, as `pack` writes it,
    // without parsing them (a busy tracker's own are most of what it hears).
    const own = JSON.stringify({ o: trackerId, e: [] }).slice(0, -5);
    client.on('notification', (n) => {
      if (n.channel !== EVENTS_CHANNEL || n.payload === undefined) return;
      if (n.payload.startsWith(own)) return;
      const envelope = readEnvelope(n.payload);
      if (envelope === undefined) {
        logger.warn('unreadable cluster event payload');
        return;
      }
      if (envelope.o === trackerId) return;
      for (const e of envelope.e) deliver(e);
    });
    const lost = (err?: Error) => {
      if (listener !== client) return;
      listener = undefined;
      client.removeAllListeners('notification');
      void client.end().catch(() => {});
      if (closed) return;
      // Maybe the primary is gone: the store looks for it again (if it has not already).
      primaryLost();
      logger.warn({ err: err?.message }, 'cluster event listener lost; reconnecting');
      scheduleListen();
    };
    client.on('error', lost);
    client.on('end', () => lost());
    try {
      await client.connect();
      await client.query(`LISTEN ${EVENTS_CHANNEL}`);
    } catch (err) {
      primaryLost();
      void client.end().catch(() => {});
      throw err;
    }
    listener = client;
    failures = 0;
    if (listenedBefore) {
      logger.warn('cluster event listener back: reading state again');
      deliver({ kind: 'events_lost', at: Date.now() });
    }
    listenedBefore = true;
  }

  function scheduleListen() {
    failures++;
    const delay = reconnect.delayMs(failures);
    reconnectTimer = setTimeout(() => {
      reconnectTimer = undefined;
      if (closed) return;
      listen().catch((err: Error) => {
        logger.warn({ err: err.message }, 'cluster event listener cannot connect');
        scheduleListen();
      });
    }, delay);
    reconnectTimer.unref();
  }

  // ---------------------------------------------------------------- sending
  let sender: pg.Client | undefined;
  let connecting: Promise<pg.Client> | undefined;
  const queue: { event: TrackerEvent; done: () => void }[] = [];
  let flushing: Promise<void> | undefined;
  /** Events whose NOTIFY failed, and those published since, until a retry sends them. */
  const unsent = new UnsentEvents();
  let retryTimer: NodeJS.Timeout | undefined;
  /** Failed rounds since a round last went through: the retry's step in `reconnect`'s table. */
  let retries = 0;

  async function senderClient(): Promise<pg.Client> {
    if (sender !== undefined) return sender;
    connecting ??= (async () => {
      const { config } = await source();
      const c = new pg.Client({ ...config, application_name: `coterie-notify-${trackerId}` });
      c.on('error', () => {
        if (sender === c) sender = undefined;
      });
      c.on('end', () => {
        if (sender === c) sender = undefined;
      });
      await c.connect();
      // Its commits hold the notify lock: not across a WAL flush (see the top of this file).
      await c.query('SET synchronous_commit = off');
      sender = c;
      return c;
    })().finally(() => {
      connecting = undefined;
    });
    return connecting;
  }

  /**
   * Packs events into payloads under the cap, in order. A `messages_stored` event too large for
   * one (a batch over many streams) goes as several, split by streams.
   */
  function pack(batch: TrackerEvent[]): { text: string; events: TrackerEvent[] }[] {
    const payloads: { text: string; events: TrackerEvent[] }[] = [];
    let current: TrackerEvent[] = [];
    const encode = (events: TrackerEvent[]) => JSON.stringify({ o: trackerId, e: events } satisfies Envelope);
    const add = (event: TrackerEvent) => {
      const alone = encode([event]);
      if (Buffer.byteLength(alone) > MAX_PAYLOAD_BYTES) {
        if (event.kind === 'messages_stored' && event.streams.length > 1) {
          const half = Math.ceil(event.streams.length / 2);
          add({ ...event, streams: event.streams.slice(0, half) });
          add({ ...event, streams: event.streams.slice(half) });
          return;
        }
        logger.error({ kind: event.kind }, 'event too large for NOTIFY: not sent to the other trackers');
        return;
      }
      const next = encode([...current, event]);
      if (Buffer.byteLength(next) > MAX_PAYLOAD_BYTES) {
        payloads.push({ text: encode(current), events: current });
        current = [event];
      } else {
        current.push(event);
      }
    };
    for (const event of batch) add(event);
    if (current.length > 0) payloads.push({ text: encode(current), events: current });
    return payloads;
  }

  /** Sends `events` in payloads, in order; returns the events of the payloads that did not go. */
  async function send(events: TrackerEvent[]): Promise<TrackerEvent[]> {
    const payloads = pack(events);
    let sent = 0;
    for (let attempt = 1; sent < payloads.length && attempt <= NOTIFY_ATTEMPTS; attempt++) {
      try {
        const client = await senderClient();
        for (; sent < payloads.length; sent++) {
          if (refuseNotify(payloads[sent]!.events)) throw new Error('NOTIFY refused (fault hook)');
          await client.query('SELECT pg_notify($1, $2)', [EVENTS_CHANNEL, payloads[sent]!.text]);
        }
      } catch (err) {
        // A broken connection: once more on a new one.
        void sender?.end().catch(() => {});
        sender = undefined;
        if (attempt === NOTIFY_ATTEMPTS) {
          logger.warn(
            { err: (err as Error).message, events: events.length },
            'cluster events not sent; kept to try again',
          );
        }
      }
    }
    return payloads.slice(sent).flatMap((p) => p.events);
  }

  async function flush(): Promise<void> {
    while ((queue.length > 0 || !unsent.empty) && retryTimer === undefined) {
      const jobs = queue.splice(0, queue.length);
      // What failed before goes first: the other trackers hear this tracker's events in order.
      // A round with nothing behind it goes as published (the backlog's merging and bounds are
      // for what waits, not for a burst that goes at once).
      const fresh = jobs.map((j) => j.event);
      const left = await send(unsent.empty ? fresh : [...unsent.take(), ...fresh]);
      // Handed over: sent, or kept in the backlog. Publishers do not wait out a broken store.
      for (const j of jobs) j.done();
      if (left.length === 0) {
        retries = 0;
      } else if (closed) {
        // Leaving: the others catch their sessions up when this tracker drops out of the cluster.
        logger.warn({ events: left.length }, 'cluster events not sent before close');
        break;
      } else {
        unsent.add(left);
        scheduleRetry();
      }
    }
    handOver();
  }

  /** Events queued behind a retry (or a close) join the backlog now: their publishers go on. */
  function handOver() {
    if (retryTimer === undefined && !closed) return;
    const jobs = queue.splice(0, queue.length);
    if (!closed) unsent.add(jobs.map((j) => j.event));
    for (const j of jobs) j.done();
  }

  /**
   * The writes behind unsent events are committed: a reader elsewhere must still hear of them.
   * Tried again after a step of the listener's table (at most 2 s), until sent or closed.
   */
  function scheduleRetry() {
    retries++;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      kick();
    }, reconnect.delayMs(retries));
    retryTimer.unref();
  }

  function kick() {
    if (flushing !== undefined) return;
    flushing = flush().finally(() => {
      flushing = undefined;
      if ((queue.length > 0 || !unsent.empty) && retryTimer === undefined) kick();
    });
  }

  await listen();

  return {
    async publish(event) {
      deliver(event);
      if (closed) return;
      if (retryTimer !== undefined) {
        // Behind a failed NOTIFY: kept (merged, bounded) for the retry, in order after it.
        unsent.add([event]);
        return;
      }
      await new Promise<void>((resolve) => {
        queue.push({ event, done: resolve });
        kick();
      });
    },
    subscribe(handler) {
      handlers.add(handler);
      return () => handlers.delete(handler);
    },
    async close() {
      closed = true;
      if (reconnectTimer !== undefined) clearTimeout(reconnectTimer);
      if (retryTimer !== undefined) clearTimeout(retryTimer);
      await flushing;
      handlers.clear();
      const l = listener;
      listener = undefined;
      await l?.end().catch(() => {});
      const s = sender ?? (await connecting?.catch(() => undefined));
      sender = undefined;
      await s?.end().catch(() => {});
    },
  };
}
