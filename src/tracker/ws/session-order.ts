import type { Logger } from 'pino';
import type { EncodedMessage, MessagesService } from '../services/messages.js';
import type { Outbox } from './outbox.js';
import { closeToResync, type Session } from './session.js';

/**
 * The last hop of "each stream in order": what one session was sent, per
 * stream. The push planner hands the hub every stream without holes, but a
 * session can still miss a push that was planned before it counted as a
 * reader (a subscription or membership heard of late, a session greeted
 * between a push's plan and its delivery). Its peer stores whatever comes and
 * acknowledges the highest seq, so the missed message, found by a later
 * catch-up, would land after newer ones. Here a push that does not follow on
 * from what the session was sent waits while the missing seqs are read from
 * the store, then everything goes out in order.
 */
export interface SessionOrder {
  /** A catch-up is done: the streams' positions are its cursors, then the last seq of each page it sent. */
  reset(s: Session, positions: ReadonlyMap<string, number>): void;
  /** The user's own message (never sent to them): their stream moves on past it when it follows on. */
  own(s: Session, m: EncodedMessage): void;
  /** Live messages for the session, in order per stream: sent now, or after the seqs missing before them. */
  push(s: Session, items: readonly EncodedMessage[]): void;
}

export function createSessionOrder(deps: {
  messages: Pick<MessagesService, 'between'>;
  outbox: Outbox;
  logger: Logger;
}): SessionOrder {
  const { messages, outbox, logger } = deps;

  const moveOn = (s: Session, streamId: string, seq: number) => {
    s.sent ??= new Map();
    if (seq > (s.sent.get(streamId) ?? 0)) s.sent.set(streamId, seq);
  };

  /** Holds `first` (and what follows it on its stream) while the seqs after `after` are read. */
  function fill(s: Session, streamId: string, after: number, first: EncodedMessage): void {
    const waiting = [first];
    s.filling ??= new Map();
    s.filling.set(streamId, waiting);
    logger.debug(
      { sessionId: s.id, streamId, after, seq: first.message.seq },
      'push does not follow on: reading the missing seqs first',
    );
    const done = (read: EncodedMessage[]) => {
      s.filling?.delete(streamId);
      if (s.closed) return;
      const bySeq = new Map<number, EncodedMessage>();
      for (const m of [...read, ...waiting]) bySeq.set(m.message.seq, m);
      const ordered = [...bySeq.values()].sort((a, b) => a.message.seq - b.message.seq);
      moveOn(s, streamId, ordered[ordered.length - 1]!.message.seq);
      outbox.sendMessages(s, ordered);
    };
    messages.between(s.caller.userId, streamId, after, first.message.seq).then(done, (err: unknown) => {
      // Sending what waits would skip the missing seqs for good (see closeToResync).
      s.filling?.delete(streamId);
      logger.warn(
        { err, sessionId: s.id, streamId },
        'cannot read the seqs missing before a push: closing the session',
      );
      closeToResync(s, 'missed messages could not be read: reconnect');
    });
  }

  return {
    reset(s, positions) {
      s.sent = new Map(positions);
    },

    own(s, m) {
      if (s.sent?.get(m.message.streamId) === m.message.seq - 1) moveOn(s, m.message.streamId, m.message.seq);
    },

    push(s, items) {
      const now: EncodedMessage[] = [];
      for (const m of items) {
        const { streamId, seq } = m.message;
        const waiting = s.filling?.get(streamId);
        if (waiting !== undefined) {
          waiting.push(m);
          continue;
        }
        const last = s.sent?.get(streamId);
        if (last !== undefined && seq > last + 1) {
          fill(s, streamId, last, m);
          continue;
        }
        // Unknown stream (no cursor: its first message), or at or below the mark (a repeat the peer drops).
        moveOn(s, streamId, seq);
        now.push(m);
      }
      outbox.sendMessages(s, now);
    },
  };
}
