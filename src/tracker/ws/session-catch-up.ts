import type { Logger } from 'pino';
import { Slots } from '../../core/slots.js';
import type { MessagesService } from '../services/messages.js';
import { MAX_BUFFERED_BYTES, type Outbox } from './outbox.js';
import type { SessionRegistry } from './registry.js';
import { closeToResync, type Session } from './session.js';
import type { SessionOrder } from './session-order.js';

/**
 * Catch-ups reading the store at once. After a tracker's death or a lost
 * LISTEN connection every session catches up, and a failover brings a
 * tracker's thousands of peers at once: the rest wait their turn (their live
 * pushes held meanwhile) instead of all paging through the store together.
 */
const CONCURRENT_CATCH_UPS = 16;

export interface SessionCatchUpDeps {
  messages: Pick<MessagesService, 'catchUp'>;
  registry: SessionRegistry;
  outbox: Outbox;
  order: SessionOrder;
  logger: Logger;
  now: () => number;
}

/** Drives sessions' catch-ups from their users' cursors (services/messages does the reading). */
export interface SessionCatchUp {
  /**
   * Sends everything after the user's cursors, then what arrived meanwhile
   * (held in `s.held`, which the caller set), then `synced`.
   */
  run(s: Session): Promise<void>;
  /**
   * Pushes may have been missed (the cluster's events were not heard for a
   * while): every session catches up again from its cursors, live pushes held
   * meanwhile as after hello. Its peer drops what it already holds.
   */
  all(): void;
  /**
   * A user became a reader of a stream (a topic subscribed, a group joined)
   * through a tracker whose event came after pushes planned without them:
   * their sessions here catch up, so nothing between their new cursor and
   * the next push is skipped (and a new member gets the group's history now).
   */
  user(userId: string): void;
}

export function createSessionCatchUp(deps: SessionCatchUpDeps): SessionCatchUp {
  const { messages, registry, outbox, order, logger, now } = deps;
  const slots = new Slots(CONCURRENT_CATCH_UPS);

  async function run(s: Session): Promise<void> {
    await slots.acquire();
    try {
      await sendFromCursors(s);
    } finally {
      slots.release();
    }
    if (s.catchUpAgain && !s.closed) {
      s.catchUpAgain = false;
      s.held = [];
      void run(s);
    }
  }

  async function sendFromCursors(s: Session): Promise<void> {
    const lastSent = new Map<string, number>();
    let positions: ReadonlyMap<string, number> = new Map();
    let count = 0;
    try {
      for await (const page of messages.catchUp(s.caller.userId, (p) => {
        positions = p;
      })) {
        if (s.closed) return;
        outbox.sendMessages(s, page);
        count += page.length;
        const last = page[page.length - 1]!.message;
        lastSent.set(last.streamId, last.seq);
        // Let the socket drain before the next page: catch-up must not buffer a whole history.
        while (!s.closed && s.socket.bufferedAmount > MAX_BUFFERED_BYTES / 4) {
          await new Promise((r) => setTimeout(r, 5));
        }
      }
    } catch (err) {
      // Going on would push what was held past what the catch-up could not send (see closeToResync).
      logger.error({ err, sessionId: s.id }, 'message catch-up failed: closing the session');
      s.held = undefined;
      s.catchUpAgain = false;
      closeToResync(s, 'catch-up failed: reconnect');
      return;
    }
    const held = s.held ?? [];
    s.held = undefined;
    const fresh = held.filter((m) => m.message.seq > (lastSent.get(m.message.streamId) ?? 0));
    order.reset(s, new Map([...positions, ...lastSent]));
    order.push(s, fresh);
    outbox.send(s, { type: 'synced', count: count + fresh.length, at: now() });
  }

  function again(s: Session) {
    if (s.info === undefined || s.closed) return; // it catches up after its hello
    if (s.held !== undefined) {
      s.catchUpAgain = true;
      return;
    }
    s.held = [];
    void run(s);
  }

  return {
    run,
    all() {
      for (const s of registry.all()) again(s);
    },
    user(userId) {
      for (const s of registry.ofUser(userId)) again(s);
    },
  };
}
