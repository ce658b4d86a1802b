/**
 * The session messages of messaging, part of the session protocol of
 * session.ts: the client's `send` and `ack_messages`, the tracker's `sent`,
 * `sent_batch`, `messages`, `synced`, `receipt` and `receipts`.
 */
import { type Static, Type } from '@sinclair/typebox';
import { MessageId, SendMessageRequest, Seq, StoredMessage, StreamId, UserId } from './api.js';
import { RequestId } from './schema-fields.js';

// ---------------------------------------------------------------- client → tracker

/**
 * Send a message over the session (the fast path; POST /v1/messages is the
 * same). Exactly one target as in SendMessageRequest. Answered by `sent`
 * (once committed) or `error`, with the same id.
 */
export const SendMessage = Type.Object(
  {
    type: Type.Literal('send'),
    id: RequestId,
    // The HTTP request's fields, so that the two ways of sending cannot drift apart.
    ...SendMessageRequest.properties,
  },
  { additionalProperties: false },
);
/** Cap on cursors in one ack_messages. */
export const MAX_CURSORS_PER_MESSAGE = 1024;
/**
 * The reader's peer stored everything up to `delivered` (and showed up to
 * `read`) in these streams. Cursors only move forward; sending the same
 * again is harmless (peers re-send theirs after each reconnect).
 */
export const AckMessages = Type.Object(
  {
    type: Type.Literal('ack_messages'),
    id: RequestId,
    cursors: Type.Array(
      Type.Object(
        { streamId: StreamId, delivered: Type.Optional(Seq), read: Type.Optional(Seq) },
        { additionalProperties: false },
      ),
      { minItems: 1, maxItems: MAX_CURSORS_PER_MESSAGE },
    ),
  },
  { additionalProperties: false },
);

// ---------------------------------------------------------------- tracker → client

/**
 * Messages for the session's user, in sequence order per stream: pushed as
 * they are stored, and after `welcome` everything after the user's delivered
 * cursors (catch-up), then `synced`. Acknowledge with ack_messages.
 */
export const MessagesEvent = Type.Object({
  type: Type.Literal('messages'),
  items: Type.Array(StoredMessage),
});
/** Catch-up after welcome is complete: what follows is live. */
export const SyncedEvent = Type.Object({
  type: Type.Literal('synced'),
  /** Messages sent during catch-up. */
  count: Type.Integer({ minimum: 0 }),
  at: Type.Integer(),
});
/** To a sender: a reader's cursor moved past messages it sent (Delivered / Read). */
export const ReceiptEvent = Type.Object({
  type: Type.Literal('receipt'),
  streamId: StreamId,
  reader: UserId,
  delivered: Seq,
  read: Seq,
  at: Type.Integer(),
});
/** Most receipts in one `receipts` frame: about 120 bytes each, far below a client's frame cap. */
export const MAX_RECEIPTS_PER_BATCH = 1000;
/**
 * Several `receipt`s in one frame, in the order they would have come (to a session whose hello
 * asked for `receiptBatches`): what one commit of acknowledgements made for this sender. A
 * message to a group of 1,000 is acknowledged by hundreds of readers in one commit.
 */
export const ReceiptBatchEvent = Type.Object({
  type: Type.Literal('receipts'),
  items: Type.Array(Type.Omit(ReceiptEvent, ['type']), { maxItems: MAX_RECEIPTS_PER_BATCH }),
});
/** The answer to `send`: committed. */
export const SentMessage = Type.Object({
  type: Type.Literal('sent'),
  id: RequestId,
  messageId: MessageId,
  streamId: StreamId,
  seq: Seq,
  state: Type.Literal('sent'),
  sentAt: Type.Integer(),
  duplicate: Type.Boolean(),
});
/** Most answers in one `sent_batch`: about 200 bytes each, a frame stays far below a client's frame cap. */
export const MAX_SENT_PER_BATCH = 1000;
/**
 * The answers to several sends, in the order `sent` would have brought them (to a session
 * whose hello asked for `sentBatches`): the sends' ids with what each `sent` carries.
 */
export const SentBatchMessage = Type.Object({
  type: Type.Literal('sent_batch'),
  items: Type.Array(Type.Omit(SentMessage, ['type']), { maxItems: MAX_SENT_PER_BATCH }),
});

export type MessagesEvent = Static<typeof MessagesEvent>;
export type SyncedEvent = Static<typeof SyncedEvent>;
export type ReceiptEvent = Static<typeof ReceiptEvent>;
export type ReceiptBatchEvent = Static<typeof ReceiptBatchEvent>;
export type SentMessage = Static<typeof SentMessage>;
export type SentBatchMessage = Static<typeof SentBatchMessage>;
export type SendMessage = Static<typeof SendMessage>;
export type AckMessages = Static<typeof AckMessages>;
/** The messaging pushes, kept apart from SessionEvent (which become notices). */
export type MessagingEvent = MessagesEvent | SyncedEvent | ReceiptEvent;
