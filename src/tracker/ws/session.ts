import type { WebSocket } from 'ws';
import { SESSION_CLOSE, type SentBatchMessage } from '../../protocol/session.js';
import type { EncodedMessage } from '../services/messages.js';
import type { PeerSessionInfo } from '../services/presence.js';
import type { Caller } from '../services/users.js';

/**
 * What a session corks while a burst of answers goes out: the upgraded
 * request's own TCP or TLS socket, captured when the session is accepted.
 * `ws` has no public cork, and its `_socket` field is private (it may be
 * renamed in any release); the request's socket is the same object, handed
 * to us through a public API.
 */
export interface Corkable {
  cork(): void;
  uncork(): void;
  /**
   * Bytes as they are, behind whatever `ws` wrote before: the outbox writes a
   * group message's WebSocket frame, built once, to each member's socket
   * (outbox.ts says why). `ws` writes to this same socket, in call order.
   */
  write(bytes: Buffer): boolean;
  /** The peer's address as this tracker sees it (the reachability check dials it back). */
  readonly remoteAddress?: string | undefined;
}

/** One send's answer in a `sent_batch`. */
export type SentItem = SentBatchMessage['items'][number];

/**
 * One connected peer. Kept small on purpose (thousands per tracker): sets are
 * created on first use, and one hub-wide timer does the heartbeats.
 */
export interface Session {
  readonly id: string;
  readonly socket: WebSocket;
  readonly transport: Corkable;
  readonly caller: Caller;
  /** Set by the hello; a session without it receives no pushes yet. */
  info: PeerSessionInfo | undefined;
  watching: Set<string> | undefined;
  /**
   * Catching up after hello: live messages wait in `held` until the catch-up
   * sent everything older, so each stream arrives in order.
   */
  held: EncodedMessage[] | undefined;
  /** Asked to catch up again while catching up (events were missed): once more when done. */
  catchUpAgain: boolean;
  /** The highest seq sent per stream since the last catch-up (session-order.ts). */
  sent: Map<string, number> | undefined;
  /** Streams whose pushes wait for the seqs missing before them to be read. */
  filling: Map<string, EncodedMessage[]> | undefined;
  /** It asked for `sent_batch` (the answers to its sends merged per commit), in its hello or an `enable`. */
  sentBatches: boolean;
  /** It asked for `receipts` (the receipts of one commit merged into one frame), in its hello or an `enable`. */
  receiptBatches: boolean;
  /** Answers to its sends not written yet (outbox.ts): merged into one `sent_batch`. */
  unsent: SentItem[] | undefined;
  /** Frames are handled one after another, in order. */
  queue: Promise<void>;
  /** Frames in `queue` not handled yet: with none, a send that needs no read is handled at once. */
  pending: number;
  closed: boolean;
}

export function newSession(id: string, socket: WebSocket, transport: Corkable, caller: Caller): Session {
  return {
    id,
    socket,
    transport,
    caller,
    info: undefined,
    watching: undefined,
    held: undefined,
    catchUpAgain: false,
    sent: undefined,
    filling: undefined,
    sentBatches: false,
    receiptBatches: false,
    unsent: undefined,
    queue: Promise.resolve(),
    pending: 0,
    closed: false,
  };
}

/**
 * Ends a session whose stream of messages has a hole the tracker could not fill (a read of the
 * store failed). Sending on would skip the hole for good: its peer acknowledges the highest seq
 * it stores, and catch-ups start after that cursor. Its peer reconnects (4503) and catches up.
 */
export function closeToResync(s: Session, reason: string): void {
  if (!s.closed) s.socket.close(SESSION_CLOSE.RESYNC, reason);
}
