import type { Logger } from 'pino';
import type { MessageSent } from '../../protocol/api.js';
import type { CoterieError } from '../../protocol/errors.js';
import {
  encodeSessionMessage,
  MAX_RECEIPTS_PER_BATCH,
  MAX_SENT_PER_BATCH,
  type ReceiptBatchEvent,
  type TrackerMessage,
} from '../../protocol/session.js';
import type { EncodedMessage } from '../services/messages.js';
import type { Session } from './session.js';

/** Unsent bytes queued to one session beyond which it is considered stuck and cut. */
export const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
/** Frames of messages stay well under the session's frame cap (messages are at most 64 KiB by default). */
const MESSAGES_FRAME_BYTES = 256 * 1024;

/** Everything the tracker writes to a session goes through here. */
export interface Outbox {
  send(s: Session, message: TrackerMessage): void;
  /** The same message to each of the sessions. */
  sendAll(sessions: Iterable<Session>, message: TrackerMessage): void;
  /** Stored messages, spliced into as few `messages` frames as the frame cap allows. */
  sendMessages(s: Session, items: readonly EncodedMessage[]): void;
  /** As `send`, for answers that come in bursts (a whole commit at once): corked until the burst is over. */
  sendBurst(s: Session, message: TrackerMessage): void;
  /**
   * The answer to the send `id`, committed: a `sent`, or, to a session that asked for
   * `sentBatches`, an item of one `sent_batch` with the answers to its other sends
   * committed in the same turn.
   */
  sendSent(s: Session, id: string | number | undefined, result: MessageSent): void;
  sendError(s: Session, err: CoterieError, id?: string | number): void;
  /**
   * Receipts for one sender, in order: one `receipts` frame (per MAX_RECEIPTS_PER_BATCH) to a
   * session that asked for `receiptBatches`, a `receipt` each to others; corked as a burst.
   */
  sendReceipts(s: Session, items: readonly ReceiptItem[]): void;
}

/** One receipt of a `receipts` frame: a `receipt` without its type. */
export type ReceiptItem = ReceiptBatchEvent['items'][number];

export function createOutbox(logger: Logger): Outbox {
  /** Open and reading its pushes; a peer that does not read must not grow the tracker's memory without bound. */
  const writable = (s: Session, what: string): boolean => {
    if (s.closed || s.socket.readyState !== s.socket.OPEN) return false;
    if (s.socket.bufferedAmount > MAX_BUFFERED_BYTES) {
      logger.warn({ sessionId: s.id, userId: s.caller.userId }, `session not reading its ${what}: closed`);
      s.socket.terminate();
      return false;
    }
    return true;
  };

  const send = (s: Session, message: TrackerMessage) => {
    // Answers waiting to be merged go first: the session gets its frames in the order they were made.
    if (s.unsent !== undefined) flushSent(s);
    if (!writable(s, 'events')) return;
    const text = encodeSessionMessage(message);
    // One write of a whole frame, as a push (sendMessages says why): a group's receipts to its
    // sender are a frame per member that moved, answers to pipelined sends one per send.
    if (s.socket.extensions === '') s.transport.write(wsTextFrame(text));
    else s.socket.send(text);
  };

  const sendAll = (sessions: Iterable<Session>, message: TrackerMessage) => {
    for (const s of sessions) send(s, message);
  };

  /** Sessions whose writes are held until the current burst of answers is over (sendBurst). */
  const corked = new Set<Session>();

  /**
   * The frames last built, for the next session that gets the very same
   * messages: a group's message goes to every member's session in one loop,
   * so the frame is spliced and encoded once, not once per member. Kept for
   * the current turn of the event loop only. Each is a whole WebSocket frame,
   * header and payload in one buffer (a server does not mask, so the bytes
   * are the same for every socket): a session's push is then one write of
   * that buffer, where `ws` would build a header per session and write it and
   * the payload as two corked writes, a writev of both (at 1,000 members,
   * 1,000 headers, 2,000 queued writes and 1,000 writev requests per message).
   */
  let last: { items: readonly EncodedMessage[]; frames: Buffer[] } | undefined;
  const framesOf = (items: readonly EncodedMessage[]): Buffer[] => {
    if (last !== undefined && sameItems(last.items, items)) return last.frames;
    const frames: Buffer[] = [];
    let part: string[] = [];
    let bytes = 0;
    const flush = () => {
      if (part.length === 0) return;
      // The items are JSON already: splice them in rather than encode each message per session.
      frames.push(wsTextFrame(`{"type":"messages","items":[${part.join(',')}]}`));
      part = [];
      bytes = 0;
    };
    for (const m of items) {
      if (bytes + m.json.length > MESSAGES_FRAME_BYTES) flush();
      part.push(m.json);
      bytes += m.json.length;
    }
    flush();
    if (last === undefined) setImmediate(() => (last = undefined));
    // A copy: the caller's array may change after this call, the frames do not.
    last = { items: items.slice(), frames };
    return frames;
  };

  const sendMessages = (s: Session, items: readonly EncodedMessage[]) => {
    // Nothing is lost by a cut: messages are stored, and the peer catches up from its cursor when it comes back.
    if (s.unsent !== undefined) flushSent(s);
    if (!writable(s, 'messages') || items.length === 0) return;
    // Written behind whatever ws wrote to the socket before (ws writes at once: no extension queues).
    if (s.socket.extensions === '') for (const frame of framesOf(items)) s.transport.write(frame);
    else for (const frame of framesOf(items)) s.socket.send(payloadOf(frame), { binary: false });
    // A push does not wait for the end of a burst of answers: they go out with it, in one write.
    if (corked.delete(s)) s.transport.uncork();
  };

  /**
   * Answers to pipelined sends come in bursts: the socket's writes are held
   * until the burst is over, so that one write carries many small frames
   * instead of one system call each.
   */
  const sendBurst = (s: Session, message: TrackerMessage) => {
    if (!corked.has(s)) {
      s.transport.cork();
      if (corked.size === 0) {
        setImmediate(() => {
          for (const c of corked) c.transport.uncork();
          corked.clear();
        });
      }
      corked.add(s);
    }
    send(s, message);
  };

  /** Sessions with answers waiting in `unsent`, written when this run of microtasks ends. */
  let unsentSessions: Session[] = [];
  const flushSent = (s: Session) => {
    const items = s.unsent;
    if (items === undefined) return;
    s.unsent = undefined;
    for (let i = 0; i < items.length; i += MAX_SENT_PER_BATCH) {
      const part = items.length <= MAX_SENT_PER_BATCH ? items : items.slice(i, i + MAX_SENT_PER_BATCH);
      sendBurst(s, { type: 'sent_batch', items: part });
    }
  };
  const flushAllSent = () => {
    const sessions = unsentSessions;
    unsentSessions = [];
    for (const s of sessions) flushSent(s);
  };

  const sendSent = (s: Session, id: string | number | undefined, result: MessageSent) => {
    const item = id === undefined ? result : { id, ...result };
    if (!s.sentBatches) {
      sendBurst(s, { type: 'sent', ...item });
      return;
    }
    if (s.unsent !== undefined) {
      s.unsent.push(item);
      return;
    }
    // A commit resolves all of its sends in one loop, so their answers are queued as microtasks
    // before this one: it runs once every answer of the commit is in, and writes one frame each.
    s.unsent = [item];
    if (unsentSessions.length === 0) queueMicrotask(flushAllSent);
    unsentSessions.push(s);
  };

  const sendError = (s: Session, err: CoterieError, id?: string | number) =>
    send(s, { type: 'error', ...(id === undefined ? {} : { id }), code: err.code, message: err.message });

  const sendReceipts = (s: Session, items: readonly ReceiptItem[]) => {
    if (!s.receiptBatches) {
      for (const r of items) sendBurst(s, { type: 'receipt', ...r });
      return;
    }
    for (let i = 0; i < items.length; i += MAX_RECEIPTS_PER_BATCH)
      sendBurst(s, { type: 'receipts', items: items.slice(i, i + MAX_RECEIPTS_PER_BATCH) });
  };

  return { send, sendAll, sendMessages, sendBurst, sendSent, sendError, sendReceipts };
}

/** The same messages (the same objects), in the same order. */
function sameItems(a: readonly EncodedMessage[], b: readonly EncodedMessage[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * A whole unmasked, final text frame of `text` (RFC 6455 §5.2), as ws would write it: FIN and
 * the text opcode, then the payload's length in 7 bits, or 126 and 16 bits, or 127 and 64 bits,
 * then its UTF-8 bytes, in one buffer.
 */
export function wsTextFrame(text: string): Buffer {
  const n = Buffer.byteLength(text);
  const head = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(head + n);
  frame[0] = 0x81;
  if (head === 2) frame[1] = n;
  else if (head === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(n, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(n), 2);
  }
  frame.write(text, head, 'utf8');
  return frame;
}

/** The payload of a frame made by wsTextFrame. */
function payloadOf(frame: Buffer): Buffer {
  const len = frame[1]! & 0x7f;
  return frame.subarray(len === 127 ? 10 : len === 126 ? 4 : 2);
}
