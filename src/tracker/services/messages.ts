/**
 * Messages and topics over one model: streams numbered by sequence, cursors
 * per reader (see migration 0002). Sends and cursor moves go through one
 * write queue: whatever arrives while a transaction commits is written by
 * the next one, so under load a commit carries hundreds of messages (SQLite
 * commits, not inserts, are the cost). A send resolves only after its
 * transaction committed: Sent means stored.
 *
 * The parts, under messages/:
 * - service.ts: createMessagesService, the checks before queueing, status; wires the rest
 * - catch-up.ts: what a session missed, in pages, from past its cursors
 * - write-queue.ts: the batching queue of sends and cursor moves, what follows a commit
 * - write-messages.ts: a batch of sends in one transaction (retries, seqs, retention by count)
 * - receipts.ts: cursor moves and the receipts they make, handed to sessions and the bus
 * - push.ts: which stored messages go to this tracker's sessions, in order per stream, without holes
 * - topics.ts: create, list, subscribe, fetch, trim
 * - directory.ts: cached users, topics, members, subscribers; who may read a stream
 * - queries.ts: the prepared queries and the chunking that keeps their number small; messagesOf
 * - model.ts: the public types and the row → message conversion
 */
export type {
  CursorInput,
  EncodedMessage,
  MessagesOptions,
  MessagesService,
  SendInput,
  StoredBatch,
} from './messages/model.js';
export { createMessagesService } from './messages/service.js';
