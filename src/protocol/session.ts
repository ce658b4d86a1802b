/**
 * The presence session: one WebSocket per connected peer at /v1/session,
 * opened with `Authorization: Bearer <token>`. Frames are JSON text, each one
 * message of the discriminated unions below (field `type`).
 *
 * Flow: the client sends `hello` first (protocol version, its peer id, the
 * addresses it serves on, the files it seeds); the tracker answers `welcome`
 * (or `error` and closes), listing the optional features it offers; the client
 * may switch some on with `enable` (session-features.ts). After that the client
 * may send the other client messages at any time; a message carrying `id` is answered by `ack` (or
 * `error`) with the same id. The tracker pushes events at any time.
 *
 * Liveness: the tracker sends WebSocket pings to a session it has heard
 * nothing from (no frame, no ping) for `heartbeatIntervalMs` (announced in
 * `welcome`); a session without a pong for `heartbeatTimeoutMs` is dead and
 * its peer stops being a seeder at once. Clients that cannot see
 * WebSocket pings may send `ping` and get `pong`.
 *
 * Invalid frames get an `error` frame (code PROTOCOL_ERROR or FRAME_TOO_LARGE)
 * and the session continues; a session that never says `hello` is closed.
 * Later issues add message types (messages, topics): add union members, keep
 * the version unless an existing member changes meaning.
 */
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { MAX_PEER_ADDRESSES, PeerAddress } from './api.js';
import { CoterieError, ERROR_CODES } from './errors.js';
import { Hex64, Name, RequestId } from './schema-fields.js';
import {
  ClusterEvent,
  MoveEvent,
  PeerMovedEvent,
  Reachability,
  ReachabilityEvent,
} from './session-cluster.js';
import { EnableMessage, WelcomeFeatures } from './session-features.js';
import {
  AckMessages,
  MessagesEvent,
  ReceiptBatchEvent,
  ReceiptEvent,
  SendMessage,
  SentBatchMessage,
  SentMessage,
  SyncedEvent,
} from './session-messaging.js';
import { PunchEvent, PunchMessage } from './session-punch.js';
import { DropOrder, ReplicasMessage, ReplicateOrder } from './session-storage.js';

export * from './session-cluster.js';
export * from './session-features.js';
export * from './session-messaging.js';
export * from './session-punch.js';
export * from './session-storage.js';

export const SESSION_PROTOCOL_VERSION = 1;
/** Hard cap on one frame, in bytes: checked before parsing. */
export const MAX_SESSION_FRAME_BYTES = 1024 * 1024;
/** Cap on file ids in one hello/announce/unannounce/watch message; send more messages for more. */
export const MAX_FILES_PER_MESSAGE = 8192;
/** Cap on the files one session may watch at once. */
export const MAX_WATCHED_FILES = 8192;

const FileIds = Type.Array(Hex64, { maxItems: MAX_FILES_PER_MESSAGE });

// ---------------------------------------------------------------- client → tracker

export const HelloMessage = Type.Object(
  {
    type: Type.Literal('hello'),
    v: Type.Integer({ minimum: 1 }),
    id: RequestId,
    /** SHA-256 fingerprint of the peer's certificate public key. */
    peerId: Hex64,
    /** Where it serves pieces, `host:port`. */
    addresses: Type.Array(PeerAddress, { maxItems: MAX_PEER_ADDRESSES }),
    /** File ids it holds completely and serves. */
    seeding: FileIds,
    /**
     * The client reads `sent_batch`: the answers to its pipelined sends that one commit made
     * durable come in one frame instead of a `sent` each (one frame to write and to read, not
     * thousands). Without it every send is answered by its own `sent`. Kept for the clients that
     * ask here; `enable` after a welcome that lists the feature is the way that reaches every tracker.
     */
    sentBatches: Type.Optional(Type.Literal(true)),
    /**
     * The client reads `receipts`: the receipts one commit of acknowledgements made for it come
     * in one frame instead of a `receipt` each (a message to a big group is acknowledged by
     * hundreds of readers at once). Without it every receipt is its own `receipt`. As for
     * sentBatches, `enable` is the way that reaches every tracker.
     */
    receiptBatches: Type.Optional(Type.Literal(true)),
  },
  // Fields it does not know are ignored, not refused: a newer peer asks for what a newer tracker
  // offers (like sentBatches and receiptBatches) and still reaches this one, which offers less.
  // Trackers before this refused them (BAD_HELLO), so peers must not send new fields to those:
  // features are switched on with `enable` after a welcome that lists them.
  { additionalProperties: true },
);
export const AnnounceMessage = Type.Object(
  { type: Type.Literal('announce'), id: RequestId, files: FileIds },
  { additionalProperties: false },
);
export const UnannounceMessage = Type.Object(
  { type: Type.Literal('unannounce'), id: RequestId, files: FileIds },
  { additionalProperties: false },
);
/** Update the addresses the peer serves on (e.g. after a port change). */
export const AddressesMessage = Type.Object(
  {
    type: Type.Literal('addresses'),
    id: RequestId,
    addresses: Type.Array(PeerAddress, { maxItems: MAX_PEER_ADDRESSES }),
  },
  { additionalProperties: false },
);
/** Receive seeder_appeared / seeder_left for these files (only in groups the user belongs to). */
export const WatchMessage = Type.Object(
  { type: Type.Literal('watch'), id: RequestId, files: FileIds },
  { additionalProperties: false },
);
export const UnwatchMessage = Type.Object(
  { type: Type.Literal('unwatch'), id: RequestId, files: FileIds },
  { additionalProperties: false },
);
export const PingMessage = Type.Object(
  { type: Type.Literal('ping'), id: RequestId },
  { additionalProperties: false },
);

export const ClientMessage = Type.Union([
  HelloMessage,
  AnnounceMessage,
  UnannounceMessage,
  AddressesMessage,
  WatchMessage,
  UnwatchMessage,
  PingMessage,
  SendMessage,
  AckMessages,
  ReplicasMessage,
  PunchMessage,
  EnableMessage,
]);
export type ClientMessage = Static<typeof ClientMessage>;
export type HelloMessage = Static<typeof HelloMessage>;
export type ClientMessageType = ClientMessage['type'];

// ---------------------------------------------------------------- tracker → client

export const WelcomeMessage = Type.Object({
  type: Type.Literal('welcome'),
  v: Type.Integer(),
  id: RequestId,
  sessionId: Type.String(),
  trackerId: Type.String(),
  userId: Name,
  peerId: Hex64,
  heartbeatIntervalMs: Type.Integer(),
  heartbeatTimeoutMs: Type.Integer(),
  /** The dial-back's verdict: from older trackers; trackers now send it after the welcome (a `reachability` message). */
  reachability: Type.Optional(Reachability),
  /**
   * The optional features this tracker offers (SESSION_FEATURES), switched on with `enable`.
   * Absent from trackers before the list: ask those for nothing.
   */
  features: WelcomeFeatures,
});
export const AckMessage = Type.Object({
  type: Type.Literal('ack'),
  id: Type.Union([Type.String(), Type.Integer()]),
});
export const ErrorMessage = Type.Object({
  type: Type.Literal('error'),
  id: RequestId,
  code: Type.Union(ERROR_CODES.map((c) => Type.Literal(c))),
  message: Type.String(),
});
export const PongMessage = Type.Object({ type: Type.Literal('pong'), id: RequestId });
/** To a group's owner: someone asked to join. */
export const JoinRequestedEvent = Type.Object({
  type: Type.Literal('join_requested'),
  groupId: Name,
  userId: Name,
  at: Type.Integer(),
});
/** To the requester: the owner accepted. */
export const JoinAcceptedEvent = Type.Object({
  type: Type.Literal('join_accepted'),
  groupId: Name,
  userId: Name,
  at: Type.Integer(),
});
/** To the requester: the owner declined. */
export const JoinDeclinedEvent = Type.Object({
  type: Type.Literal('join_declined'),
  groupId: Name,
  userId: Name,
  at: Type.Integer(),
});
/** To sessions watching the file: a peer started serving it. */
export const SeederAppearedEvent = Type.Object({
  type: Type.Literal('seeder_appeared'),
  fileId: Hex64,
  peerId: Hex64,
  userId: Name,
  addresses: Type.Array(Type.String()),
  at: Type.Integer(),
});
/** To sessions watching the file: a peer stopped serving it (closed, dead, unannounced, stopped sharing). */
export const SeederLeftEvent = Type.Object({
  type: Type.Literal('seeder_left'),
  fileId: Hex64,
  peerId: Hex64,
  at: Type.Integer(),
});

/**
 * To the sessions of a group's members: `userId` left the group or was
 * removed, and their tickets for it issued before `before` (seconds since the
 * epoch) are void. A seeder drops that user's connections for the group's
 * files and refuses those tickets. Also sent after `welcome` for the
 * revocations of the last hour in the user's groups (a seeder may have missed
 * them while its session was down).
 */
export const TicketsRevokedEvent = Type.Object({
  type: Type.Literal('tickets_revoked'),
  groupId: Name,
  userId: Name,
  before: Type.Integer({ minimum: 0 }),
  at: Type.Integer(),
});
export type TicketsRevokedEvent = Static<typeof TicketsRevokedEvent>;

/**
 * To the sessions of a group's members: the name was deleted (or versions of
 * it fell out of the group's retention), and these file ids are no longer
 * listed in the group: a seeder stops serving them for that group (no ticket
 * for them is issued any more). Also sent after `welcome` for the deletions
 * of the last hour in the user's groups (a seeder may have missed them).
 */
export const FileDeletedEvent = Type.Object({
  type: Type.Literal('file_deleted'),
  groupId: Name,
  name: Type.String({ minLength: 1, maxLength: 1024 }),
  fileIds: Type.Array(Type.String({ pattern: '^[0-9a-f]{64}$' }), { maxItems: 1000 }),
  at: Type.Integer(),
});
export type FileDeletedEvent = Static<typeof FileDeletedEvent>;

export const TrackerMessage = Type.Union([
  WelcomeMessage,
  AckMessage,
  ErrorMessage,
  PongMessage,
  JoinRequestedEvent,
  JoinAcceptedEvent,
  JoinDeclinedEvent,
  SeederAppearedEvent,
  SeederLeftEvent,
  TicketsRevokedEvent,
  FileDeletedEvent,
  MessagesEvent,
  SyncedEvent,
  ReceiptEvent,
  ReceiptBatchEvent,
  SentMessage,
  SentBatchMessage,
  ClusterEvent,
  ReplicateOrder,
  DropOrder,
  ReachabilityEvent,
  MoveEvent,
  PunchEvent,
  PeerMovedEvent,
]);
export type TrackerMessage = Static<typeof TrackerMessage>;
export type WelcomeMessage = Static<typeof WelcomeMessage>;
export type SessionEvent = Static<
  | typeof JoinRequestedEvent
  | typeof JoinAcceptedEvent
  | typeof JoinDeclinedEvent
  | typeof SeederAppearedEvent
  | typeof SeederLeftEvent
  | typeof TicketsRevokedEvent
  | typeof FileDeletedEvent
  | typeof ReplicateOrder
  | typeof DropOrder
>;

/** WebSocket close codes the tracker uses (4000–4999 are for applications). */
export const SESSION_CLOSE = Object.freeze({
  /** Normal shutdown of the tracker. */
  SHUTDOWN: 1001,
  /** The first message was not a valid hello, or the version is unsupported. */
  BAD_HELLO: 4400,
  /** The token is missing, revoked or expired. */
  UNAUTHENTICATED: 4401,
  /** Another session registered the same peer id. */
  REPLACED: 4409,
  /**
   * The tracker could not read messages the session missed (its store failed): sending what came
   * after them would move the peer's cursor past them. Reconnect (elsewhere) and catch up.
   */
  RESYNC: 4503,
});

// ---------------------------------------------------------------- codecs

// biome-ignore lint/correctness/noUnusedVariables: T documents which union the checker belongs to
type Checker<T> = ReturnType<typeof TypeCompiler.Compile<TSchema>>;

/** One compiled checker per message type, so an error names the field of the message that was meant. */
function compileUnion<T>(members: TSchema[]): Map<string, Checker<T>> {
  const map = new Map<string, Checker<T>>();
  for (const m of members) {
    const literal = (m as unknown as { properties: { type: { const: string } } }).properties.type.const;
    map.set(literal, TypeCompiler.Compile(m) as Checker<T>);
  }
  return map;
}

const clientChecks = compileUnion<ClientMessage>(ClientMessage.anyOf);
const trackerChecks = compileUnion<TrackerMessage>(TrackerMessage.anyOf);

function decode<T>(raw: string | Buffer | ArrayBuffer | Buffer[], checks: Map<string, Checker<T>>): T {
  const bytes = Array.isArray(raw)
    ? raw.reduce((n, b) => n + b.length, 0)
    : typeof raw === 'string'
      ? Buffer.byteLength(raw)
      : raw.byteLength;
  if (bytes > MAX_SESSION_FRAME_BYTES) {
    throw new CoterieError(
      'FRAME_TOO_LARGE',
      `session frame of ${bytes} bytes exceeds ${MAX_SESSION_FRAME_BYTES}: split the file list over several messages`,
    );
  }
  // A Buffer (what ws hands over) is decoded where it lies: Buffer.from(buffer) would copy it first.
  const text =
    typeof raw === 'string'
      ? raw
      : Array.isArray(raw)
        ? Buffer.concat(raw).toString('utf8')
        : Buffer.isBuffer(raw)
          ? raw.toString('utf8')
          : Buffer.from(raw).toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new CoterieError(
      'PROTOCOL_ERROR',
      'session frame is not JSON: send one JSON message per text frame',
    );
  }
  const type =
    typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as { type?: unknown }).type
      : undefined;
  const check = typeof type === 'string' ? checks.get(type) : undefined;
  if (check === undefined) {
    throw new CoterieError(
      'PROTOCOL_ERROR',
      `unknown session message type ${JSON.stringify(type ?? null).slice(0, 40)}: expected one of ${[...checks.keys()].join(', ')}`,
      { details: { id: requestIdOf(value) } },
    );
  }
  if (!(check as { Check(v: unknown): boolean }).Check(value)) {
    const first = check.Errors(value).First();
    throw new CoterieError(
      'PROTOCOL_ERROR',
      `invalid ${type} message${first ? `: ${first.path || '/'} ${first.message}` : ''}`,
      { details: { id: requestIdOf(value) } },
    );
  }
  return value as T;
}

/** Parses and validates a frame from a client. Throws CoterieError (PROTOCOL_ERROR, FRAME_TOO_LARGE). */
export function parseClientMessage(raw: string | Buffer | ArrayBuffer | Buffer[]): ClientMessage {
  return decode(raw, clientChecks);
}

/** Parses and validates a frame from the tracker. Throws CoterieError (PROTOCOL_ERROR, FRAME_TOO_LARGE). */
export function parseTrackerMessage(raw: string | Buffer | ArrayBuffer | Buffer[]): TrackerMessage {
  return decode(raw, trackerChecks);
}

export function encodeSessionMessage(message: ClientMessage | TrackerMessage): string {
  return JSON.stringify(message);
}

/** The request id of a frame that failed validation, when one can be read, to address the error frame. */
export function requestIdOf(raw: unknown): string | number | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const id = (raw as { id?: unknown }).id;
  return typeof id === 'string' && id.length <= 64
    ? id
    : Number.isSafeInteger(id)
      ? (id as number)
      : undefined;
}
