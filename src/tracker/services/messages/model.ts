import type {
  CreateTopicRequest,
  MessagePage,
  MessageSent,
  MessageStatus,
  StoredMessage,
  Subscription,
  TopicList,
  TopicSummary,
} from '../../../protocol/api.js';
import type { ParsedStream } from '../../../protocol/streams.js';
import type { Receipt } from '../../events/index.js';
import { toNumber } from '../../store/index.js';

export interface SendInput {
  to?: string | undefined;
  groupId?: string | undefined;
  topic?: string | undefined;
  clientId: string;
  body: string;
}

export interface CursorInput {
  streamId: string;
  delivered?: number | undefined;
  read?: number | undefined;
}

/** A stored message with its JSON encoding, made once for every session it goes to. */
export interface EncodedMessage {
  message: StoredMessage;
  json: string;
}

export interface StoredBatch {
  messages: EncodedMessage[];
  /** Users who read each stream of the batch (the sender of a message is skipped when pushing). */
  readers: Map<string, readonly string[]>;
}

export interface MessagesService {
  /**
   * Checks and queues a send (resolves once queued, in call order); `committed`
   * settles once the message is stored. Wrapped in an object because promises
   * of promises flatten.
   */
  submit(userId: string, input: SendInput): Promise<{ committed: Promise<MessageSent> }>;
  /**
   * As `submit`, within this call when nothing needs a read first (a direct send to a user
   * already known here): checked (throws as `submit` would) and queued; undefined when the
   * send needs `submit`.
   */
  submitNow(userId: string, input: SendInput): { committed: Promise<MessageSent> } | undefined;
  send(userId: string, input: SendInput): Promise<MessageSent>;
  /** Checks and queues cursor moves (resolves once queued); `committed` resolves once written. */
  ack(userId: string, cursors: CursorInput[]): Promise<{ committed: Promise<void> }>;
  /**
   * As `ack`, within this call when no check needs a read (the streams of cached groups the user
   * is a member of, or the user's own conversations): checked (throws as `ack` would) and queued;
   * undefined when the frame needs `ack`. `committed` only `wait`ing (else undefined).
   */
  ackNow(
    userId: string,
    cursors: readonly CursorInput[],
    wait: boolean,
  ): { committed: Promise<void> | undefined } | undefined;
  status(userId: string, messageId: string): Promise<MessageStatus>;
  createTopic(userId: string, groupId: string, request: CreateTopicRequest): Promise<TopicSummary>;
  listTopics(userId: string, groupId: string): Promise<TopicList>;
  subscribe(userId: string, groupId: string, topic: string, subscribe: boolean): Promise<Subscription>;
  fetch(
    userId: string,
    groupId: string,
    topic: string,
    from: number | undefined,
    limit: number | undefined,
  ): Promise<MessagePage>;
  /**
   * Everything after the user's delivered cursors, in pages, in order per
   * stream (own messages skipped); `onPositions` hears the cursors first.
   */
  catchUp(
    userId: string,
    onPositions?: (positions: ReadonlyMap<string, number>) => void,
  ): AsyncGenerator<EncodedMessage[]>;
  /** A stream's messages in (after, before) that a catch-up would send this user. */
  between(userId: string, streamId: string, after: number, before: number): Promise<EncodedMessage[]>;
  onStored(listener: (batch: StoredBatch) => void): () => void;
  /**
   * Set by the session hub: which of these users have a session on this
   * tracker. A stream's first push starts from their delivered cursors.
   */
  setConnectedUsers(filter: (users: readonly string[]) => readonly string[]): void;
  onReceipts(listener: (receipts: Receipt[]) => void): () => void;
  /** Deletes topic messages beyond their retention; returns how many. */
  trim(): Promise<number>;
  /** Writes what is queued, stops the retention timer. */
  close(): Promise<void>;
}

export interface MessagesOptions {
  messageMaxBytes: number;
  messageRatePerSecond: number;
  messageBurst: number;
  /** How often expired topic messages are deleted. */
  retentionSweepMs: number;
  /** This tracker on the event bus: its own message events are pushed locally, not read back. */
  trackerId?: string | undefined;
  /** Where failures that are recovered from, but worth knowing about at 3 a.m., are told. */
  logger?: MessagesLogger | undefined;
  /** After each committed write of sends: how many messages it carried and its seconds (metrics). */
  onBatchWritten?: ((messages: number, seconds: number) => void) | undefined;
}

/** The part of a pino logger the message service uses. */
export interface MessagesLogger {
  warn(details: object, message: string): void;
}

/** The columns a message is read with (toStoredMessage's row). */
export const MESSAGE_COLUMNS = ['stream_id', 'seq', 'message_id', 'sender', 'body', 'created_at'] as const;

export function toStoredMessage(
  row: {
    stream_id: string;
    seq: number | string;
    message_id: string;
    sender: string;
    body: string;
    created_at: number | string;
  },
  parsed: ParsedStream,
): StoredMessage {
  const m: StoredMessage = {
    messageId: row.message_id,
    streamId: row.stream_id,
    seq: toNumber(row.seq),
    kind: parsed.kind,
    sender: row.sender,
    body: row.body,
    sentAt: toNumber(row.created_at),
  };
  if (parsed.kind === 'direct') m.to = parsed.users[0] === row.sender ? parsed.users[1] : parsed.users[0];
  else m.groupId = parsed.groupId;
  if (parsed.kind === 'topic') m.topic = parsed.topic;
  return m;
}

export const encode = (message: StoredMessage): EncodedMessage => ({
  message,
  json: JSON.stringify(message),
});
