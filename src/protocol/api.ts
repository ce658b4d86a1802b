/**
 * The tracker's REST + JSON API (under /v1): every request and response
 * schema, as TypeBox schemas (JSON Schema at run time, served as OpenAPI at
 * /v1/openapi.json) and their static TypeScript types. The tracker validates
 * with these; the peer daemon and the CLI import the types from here.
 *
 * Authentication: `Authorization: Bearer <token>` from `POST /v1/login`, on
 * every route except `POST /v1/users`, `POST /v1/login`, `GET /v1/cluster/keys`,
 * `/healthz`, `/metrics` and `/v1/openapi.json`.
 *
 * Errors: HTTP status plus `ErrorBody` (`{"error":{"code","message"}}`) with a
 * code from src/protocol/errors.ts.
 */
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { ERROR_CODES } from './errors.js';
import {
  MAX_FILE_PIECES,
  MAX_FILE_SIZE_BYTES,
  MAX_PIECE_SIZE_BYTES,
  MAX_PIECES,
  MAX_TREE_FILES,
} from './manifest.js';
import { FILES_PER_PAGE, MAX_FILE_PAGES, PIECES_PER_PAGE } from './manifest-pages.js';
import { FILE_NAME_MAX_LENGTH, MESSAGE_ID_PATTERN } from './names.js';
import { Hex64, Name } from './schema-fields.js';
import { MAX_KEEP_VERSIONS, MAX_LOCK_TTL_SECONDS } from './version-limits.js';

export const API_PREFIX = '/v1';

// ---------------------------------------------------------------- building blocks

/** Names (user and group ids) and SHA-256 hex ids (file and peer ids): schema-fields.ts. */
export { Hex64, Name };
export const UserId = Name;
export const GroupId = Name;
export const FileId = Hex64;
export const PeerId = Hex64;
/** A display name inside a group: printable, no path separators (see names.ts isValidFileName). */
export const FileName = Type.String({ minLength: 1, maxLength: FILE_NAME_MAX_LENGTH });
/** Milliseconds since the epoch. */
export const TimestampMs = Type.Integer({ minimum: 0 });
/**
 * Where a peer serves pieces: `host:port` (IPv6 as `[addr]:port`). At most
 * MAX_PEER_ADDRESSES of them, each at most 300 characters.
 */
export const MAX_PEER_ADDRESSES = 16;
export const PeerAddress = Type.String({ minLength: 3, maxLength: 300 });
export const PeerAddresses = Type.Array(PeerAddress, { maxItems: MAX_PEER_ADDRESSES });

export const Password = Type.String({ minLength: 8, maxLength: 1024 });

export const ErrorBodySchema = Type.Object({
  error: Type.Object({
    code: Type.Union(ERROR_CODES.map((c) => Type.Literal(c))),
    message: Type.String(),
    details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  }),
});

// ---------------------------------------------------------------- users and sessions

/** POST /v1/users → 201 UserCreated (409 USER_EXISTS). */
export const CreateUserRequest = Type.Object(
  { userId: UserId, password: Password },
  { additionalProperties: false },
);
export type CreateUserRequest = Static<typeof CreateUserRequest>;
export const UserCreated = Type.Object({ userId: UserId, createdAt: TimestampMs });
export type UserCreated = Static<typeof UserCreated>;

/** POST /v1/login → 200 LoginResponse (401 BAD_CREDENTIALS, 429 RATE_LIMITED). */
export const LoginRequest = Type.Object(
  {
    userId: UserId,
    password: Type.String({ minLength: 1, maxLength: 1024 }),
    /** Optional shorter lifetime; the tracker caps it at its own maximum. */
    ttlSeconds: Type.Optional(Type.Integer({ minimum: 60, maximum: 365 * 24 * 3600 })),
  },
  { additionalProperties: false },
);
export type LoginRequest = Static<typeof LoginRequest>;
export const LoginResponse = Type.Object({
  /** The bearer token. Shown once: the tracker keeps only its hash. */
  token: Type.String(),
  userId: UserId,
  expiresAt: TimestampMs,
});
export type LoginResponse = Static<typeof LoginResponse>;

/** POST /v1/logout → 200 LogoutResponse: revokes the token used for the call. */
export const LogoutResponse = Type.Object({ loggedOut: Type.Literal(true) });
export type LogoutResponse = Static<typeof LogoutResponse>;

/** GET /v1/whoami → 200 WhoAmI. */
export const WhoAmI = Type.Object({ userId: UserId, expiresAt: TimestampMs });
export type WhoAmI = Static<typeof WhoAmI>;

// ---------------------------------------------------------------- groups

export const Standing = Type.Union([Type.Literal('member'), Type.Literal('pending'), Type.Literal('none')]);
export type Standing = Static<typeof Standing>;

export const GroupParams = Type.Object({ groupId: GroupId });
export type GroupParams = Static<typeof GroupParams>;
export const GroupUserParams = Type.Object({ groupId: GroupId, userId: UserId });
export type GroupUserParams = Static<typeof GroupUserParams>;

/** POST /v1/groups → 201 GroupSummary (409 GROUP_EXISTS). The creator is owner and member. */
export const CreateGroupRequest = Type.Object({ groupId: GroupId }, { additionalProperties: false });
export type CreateGroupRequest = Static<typeof CreateGroupRequest>;

export const GroupSummary = Type.Object({
  groupId: GroupId,
  owner: UserId,
  memberCount: Type.Integer({ minimum: 0 }),
  /** The caller's standing in the group. */
  standing: Standing,
  createdAt: TimestampMs,
});
export type GroupSummary = Static<typeof GroupSummary>;

/** GET /v1/groups → 200 GroupList: every group, with the caller's standing. */
export const GroupList = Type.Object({ groups: Type.Array(GroupSummary) });
export type GroupList = Static<typeof GroupList>;

/**
 * POST /v1/groups/:groupId/join → 202 JoinResponse. Idempotent while pending;
 * 409 ALREADY_MEMBER for members; 404 GROUP_NOT_FOUND.
 */
export const JoinResponse = Type.Object({
  groupId: GroupId,
  standing: Type.Literal('pending'),
  owner: UserId,
});
export type JoinResponse = Static<typeof JoinResponse>;

/** GET /v1/groups/:groupId/requests → 200 JoinRequestList (owner only: 403 NOT_OWNER). */
export const JoinRequest = Type.Object({ userId: UserId, requestedAt: TimestampMs });
export type JoinRequest = Static<typeof JoinRequest>;
export const JoinRequestList = Type.Object({ groupId: GroupId, requests: Type.Array(JoinRequest) });
export type JoinRequestList = Static<typeof JoinRequestList>;

/**
 * POST /v1/groups/:groupId/requests/:userId/accept and …/decline → 200
 * JoinDecision (owner only; 404 REQUEST_NOT_FOUND when nothing is pending).
 */
export const JoinDecision = Type.Object({
  groupId: GroupId,
  userId: UserId,
  decision: Type.Union([Type.Literal('accepted'), Type.Literal('declined')]),
});
export type JoinDecision = Static<typeof JoinDecision>;

/** GET /v1/groups/:groupId/members → 200 MemberList (members only: 403 NOT_A_MEMBER). */
export const Member = Type.Object({
  userId: UserId,
  role: Type.Union([Type.Literal('owner'), Type.Literal('member')]),
  joinedAt: TimestampMs,
});
export type Member = Static<typeof Member>;
export const MemberList = Type.Object({ groupId: GroupId, members: Type.Array(Member) });
export type MemberList = Static<typeof MemberList>;

/**
 * POST /v1/groups/:groupId/members/:userId/remove → 200 RemoveMemberResponse
 * (owner only: 403 NOT_OWNER; 404 USER_NOT_FOUND; 403 NOT_A_MEMBER when the
 * user is not in the group; 400 BAD_REQUEST for the owner themself, who
 * leaves instead). The member's shares there stop being listed and their
 * tickets for the group are revoked at once (`tickets_revoked` on the session).
 */
export const RemoveMemberResponse = Type.Object({
  groupId: GroupId,
  userId: UserId,
  removed: Type.Literal(true),
});
export type RemoveMemberResponse = Static<typeof RemoveMemberResponse>;

/**
 * POST /v1/groups/:groupId/leave → 200 LeaveResponse. An owner leaving passes
 * ownership to the longest-standing member; the last member leaving deletes
 * the group (and its file listing).
 */
export const LeaveResponse = Type.Object({
  groupId: GroupId,
  /** The owner after the call; null when the group was deleted. */
  owner: Type.Union([UserId, Type.Null()]),
  deleted: Type.Boolean(),
});
export type LeaveResponse = Static<typeof LeaveResponse>;

// ---------------------------------------------------------------- files

/**
 * The manifest as JSON: a single file's whole (version 1, see manifest.ts),
 * or a folder's paged root (version 2, see manifest-pages.ts), whose pages
 * travel one by one (putManifestPage, getManifestPage). The schema bounds
 * shapes and sizes; the tracker then runs validateManifest or validateRoot
 * and recomputes the file id itself.
 */
export const ManifestSchema = Type.Union([
  Type.Object(
    {
      version: Type.Literal(1),
      size: Type.Integer({ minimum: 0, maximum: MAX_FILE_SIZE_BYTES }),
      pieceSize: Type.Integer({ minimum: 1, maximum: MAX_PIECE_SIZE_BYTES }),
      pieces: Type.Array(Type.String({ minLength: 64, maxLength: 64 }), { maxItems: MAX_FILE_PIECES }),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      version: Type.Literal(2),
      size: Type.Integer({ minimum: 0, maximum: MAX_FILE_SIZE_BYTES }),
      pieceSize: Type.Integer({ minimum: 1, maximum: MAX_PIECE_SIZE_BYTES }),
      pieceCount: Type.Integer({ minimum: 0, maximum: MAX_PIECES }),
      fileCount: Type.Integer({ minimum: 1, maximum: MAX_TREE_FILES }),
      filePages: Type.Array(Type.String({ minLength: 64, maxLength: 64 }), { maxItems: MAX_FILE_PAGES }),
      piecePages: Type.Array(Type.String({ minLength: 64, maxLength: 64 }), {
        maxItems: Math.ceil(MAX_PIECES / PIECES_PER_PAGE),
      }),
    },
    { additionalProperties: false },
  ),
]);
export type ManifestJson = Static<typeof ManifestSchema>;

/**
 * POST /v1/groups/:groupId/files → 201 ShareResponse (200 when the same
 * content was already listed under that name). Members only. `peerId` is the
 * caller's peer that serves the bytes; it becomes a live seeder while its
 * session (/v1/session) is up. 409 FILE_NAME_TAKEN when the name is used in
 * the group by other content; 400 INVALID_MANIFEST.
 */
export const ShareRequest = Type.Object(
  { name: FileName, manifest: ManifestSchema, peerId: PeerId },
  { additionalProperties: false },
);
export type ShareRequest = Static<typeof ShareRequest>;
export const ShareResponse = Type.Object({
  groupId: GroupId,
  fileId: FileId,
  name: FileName,
  /** False when this content was already listed in the group under this name. */
  created: Type.Boolean(),
  /** The version of the name this content is (1 for a name's first share). */
  version: Type.Optional(Type.Integer({ minimum: 1 })),
});
export type ShareResponse = Static<typeof ShareResponse>;

/**
 * POST /v1/groups/:groupId/manifest-pages → 200 ManifestPageResponse (members
 * only): one page of a folder's manifest (manifest-pages.ts), kept by the
 * SHA-256 of its encoding, which the tracker computes; share the root once
 * all its pages are up. 400 INVALID_MANIFEST for a bad path or shape.
 * GET /v1/groups/:groupId/manifest-pages/:hash → the page (members only).
 */
export const ManifestPageSchema = Type.Union([
  Type.Object(
    {
      kind: Type.Literal('files'),
      files: Type.Array(
        Type.Object(
          {
            path: Type.String({ minLength: 1, maxLength: 4096 }),
            size: Type.Integer({ minimum: 0, maximum: MAX_FILE_SIZE_BYTES }),
            executable: Type.Optional(Type.Literal(true)),
          },
          { additionalProperties: false },
        ),
        { minItems: 1, maxItems: FILES_PER_PAGE },
      ),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      kind: Type.Literal('pieces'),
      pieces: Type.Array(Type.String({ minLength: 64, maxLength: 64 }), { maxItems: PIECES_PER_PAGE }),
    },
    { additionalProperties: false },
  ),
]);
export const ManifestPageResponse = Type.Object({ hash: Hex64 });
export type ManifestPageResponse = Static<typeof ManifestPageResponse>;
export const ManifestPageParams = Type.Object({ groupId: GroupId, hash: Hex64 });

export const FileSummary = Type.Object({
  fileId: FileId,
  name: FileName,
  size: Type.Integer({ minimum: 0 }),
  pieceSize: Type.Integer({ minimum: 1 }),
  pieceCount: Type.Integer({ minimum: 0 }),
  /** Users who share it in this group (whether or not online). */
  sharers: Type.Array(UserId),
  /** Peers serving it right now (live session, announced, shared in this group). */
  seeders: Type.Integer({ minimum: 0 }),
  /**
   * Members downloading it now who serve the pieces they verified (partial
   * seeders, issue 17), not counted in `seeders`. Absent from older trackers.
   */
  partialSeeders: Type.Optional(Type.Integer({ minimum: 0 })),
  sharedAt: TimestampMs,
  /** The name's current version (the one listed: `fileId` is its content). */
  version: Type.Optional(Type.Integer({ minimum: 1 })),
  /** Present while someone holds the name's lock. */
  lock: Type.Optional(Type.Object({ holder: UserId, expiresAt: TimestampMs })),
  /**
   * Verified replicas of this version on storage peers (issue 16): on live
   * ones, on ones in their grace (still counted, no repair yet), and the
   * group's `min`. Present once the group has a replication policy or
   * storage peers.
   */
  replicas: Type.Optional(
    Type.Object({
      live: Type.Integer({ minimum: 0 }),
      grace: Type.Integer({ minimum: 0 }),
      min: Type.Integer({ minimum: 0 }),
    }),
  ),
});
export type FileSummary = Static<typeof FileSummary>;

/** GET /v1/groups/:groupId/files → 200 FileList (members only). */
export const FileList = Type.Object({ groupId: GroupId, files: Type.Array(FileSummary) });
export type FileList = Static<typeof FileList>;

/**
 * `:file` is a file id (64 hex) or the file's display name in the group;
 * a file id is tried first.
 */
export const GroupFileParams = Type.Object({
  groupId: GroupId,
  file: Type.String({ minLength: 1, maxLength: FILE_NAME_MAX_LENGTH }),
});
export type GroupFileParams = Static<typeof GroupFileParams>;

/** A version number in a query string: a positive integer (`?version=3`). */
export const VersionNumber = Type.String({ pattern: '^[1-9][0-9]{0,14}$' });
/**
 * `?version=N` on the file detail, seeders and ticket routes: that retained
 * version of the name (404 VERSION_NOT_FOUND otherwise); the current one
 * when absent. With a file id as `:file`, N must be that file's version.
 */
export const VersionQuery = Type.Object(
  { version: Type.Optional(VersionNumber) },
  { additionalProperties: false },
);
export type VersionQuery = Static<typeof VersionQuery>;

export const Seeder = Type.Object({
  peerId: PeerId,
  userId: UserId,
  addresses: PeerAddresses,
  /** Quality in [0, 1]: 0.5 is unknown, higher is better (decays back to 0.5). */
  score: Type.Number({ minimum: 0, maximum: 1 }),
  /** Reported corrupt repeatedly: listed last, use only when nobody else has the piece. */
  flagged: Type.Boolean(),
  /** A member downloading the file who serves the pieces it verified so far (not a whole copy). */
  partial: Type.Optional(Type.Literal(true)),
});
export type Seeder = Static<typeof Seeder>;

/**
 * GET /v1/groups/:groupId/files/:file → 200 FileDetail (members only): the
 * manifest and the live seeders, best first, flagged ones last.
 */
export const FileDetail = Type.Object({
  groupId: GroupId,
  fileId: FileId,
  name: FileName,
  version: Type.Optional(Type.Integer({ minimum: 1 })),
  manifest: ManifestSchema,
  sharers: Type.Array(UserId),
  seeders: Type.Array(Seeder),
});
export type FileDetail = Static<typeof FileDetail>;

/**
 * GET /v1/groups/:groupId/files/:file/seeders → 200 SeederList (members only):
 * the live seeders alone. The manifest never changes (the file id is its
 * hash), so a downloader fetches it once and polls this while it downloads.
 */
export const SeederList = Type.Object({
  groupId: GroupId,
  fileId: FileId,
  seeders: Type.Array(Seeder),
});
export type SeederList = Static<typeof SeederList>;

/**
 * DELETE /v1/groups/:groupId/files/:file[?peerId=…] → 200 StopShareResponse.
 * Removes the caller's share (of that peer, or of all the caller's peers);
 * 404 NOT_SHARING when the caller does not share it.
 */
export const StopShareQuery = Type.Object({ peerId: Type.Optional(PeerId) }, { additionalProperties: false });
export type StopShareQuery = Static<typeof StopShareQuery>;
export const StopShareResponse = Type.Object({
  groupId: GroupId,
  fileId: FileId,
  /** False when nobody shares the file in the group any more: it left the listing. */
  listed: Type.Boolean(),
});
export type StopShareResponse = Static<typeof StopShareResponse>;

// ---------------------------------------------------------------- versions, deletes and locks

/**
 * POST /v1/groups/:groupId/files/:file/versions → 201 UpdateResponse: new
 * content under the name as its next version (200, `created: false`, when the
 * content is already the current version). `ifVersion`: compare-and-set, 409
 * VERSION_CONFLICT (details.currentVersion) unless the current version is N.
 * 423 FILE_LOCKED while another user holds the name's lock. Members only.
 */
export const UpdateRequest = Type.Object(
  { manifest: ManifestSchema, peerId: PeerId, ifVersion: Type.Optional(Type.Integer({ minimum: 1 })) },
  { additionalProperties: false },
);
export type UpdateRequest = Static<typeof UpdateRequest>;
export const UpdateResponse = Type.Object({
  groupId: GroupId,
  name: FileName,
  fileId: FileId,
  version: Type.Integer({ minimum: 1 }),
  created: Type.Boolean(),
  /** File ids of versions the group's retention dropped with this update. */
  dropped: Type.Array(FileId),
});
export type UpdateResponse = Static<typeof UpdateResponse>;

/** Where a verified replica of a version lives (issue 16); `state` is its storage peer's: live or grace. */
export const ReplicaInfo = Type.Object({
  peerId: PeerId,
  userId: UserId,
  state: Type.String(),
});
export const FileVersion = Type.Object({
  version: Type.Integer({ minimum: 1 }),
  fileId: FileId,
  size: Type.Integer({ minimum: 0 }),
  /** The user who shared this version. */
  author: UserId,
  createdAt: TimestampMs,
  /** Verified replicas on live or in-grace storage peers: absent while the group has neither a replication policy nor storage peers. */
  replicas: Type.Optional(Type.Array(ReplicaInfo)),
});
export type FileVersion = Static<typeof FileVersion>;
export const FileLock = Type.Object({
  groupId: GroupId,
  name: FileName,
  holder: UserId,
  /** The holder's peer whose session keeps the lock alive (absent: only the TTL bounds it). */
  peerId: Type.Optional(PeerId),
  expiresAt: TimestampMs,
});
export type FileLock = Static<typeof FileLock>;
/** GET /v1/groups/:groupId/files/:file/versions → 200 VersionList, newest first (members only). */
export const VersionList = Type.Object({
  groupId: GroupId,
  name: FileName,
  currentVersion: Type.Integer({ minimum: 1 }),
  /** The group's retention: how many versions are kept. */
  keep: Type.Integer({ minimum: 1 }),
  versions: Type.Array(FileVersion),
  lock: Type.Optional(FileLock),
});
export type VersionList = Static<typeof VersionList>;

/**
 * POST /v1/groups/:groupId/files/:file/delete → 200 DeleteResponse. An author
 * of any version of the name, or the group owner (403 NOT_AUTHOR otherwise);
 * 423 FILE_LOCKED while another user holds the lock. Every version leaves the
 * listing, no ticket is issued for them, and the group's sessions get a
 * `file_deleted` push. The name can then be shared afresh (version 1).
 */
export const DeleteResponse = Type.Object({
  groupId: GroupId,
  name: FileName,
  /** Every version's file id: seeders stop serving them. */
  fileIds: Type.Array(FileId),
});
export type DeleteResponse = Static<typeof DeleteResponse>;

/**
 * POST /v1/groups/:groupId/files/:file/lock → 200 FileLock (members only).
 * Taken, or renewed (a new expiry) when the caller already holds it; 423
 * FILE_LOCKED when another user does. With `peerId` (the caller's connected
 * peer: 404 NOT_FOUND when it has no session) the lock also ends as soon as
 * that peer's session is gone from the cluster.
 */
export const LockRequest = Type.Object(
  {
    ttlSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_LOCK_TTL_SECONDS })),
    peerId: Type.Optional(PeerId),
  },
  { additionalProperties: false },
);
export type LockRequest = Static<typeof LockRequest>;
/**
 * POST /v1/groups/:groupId/files/:file/unlock → 200 UnlockResponse: by the
 * holder or the group owner (423 FILE_LOCKED for others); `released: false`
 * when nobody held it.
 */
export const UnlockResponse = Type.Object({ groupId: GroupId, name: FileName, released: Type.Boolean() });
export type UnlockResponse = Static<typeof UnlockResponse>;

/** POST /v1/groups/:groupId/versions → 200 KeepVersionsResponse (owner only): the group's retention. */
export {
  DEFAULT_KEEP_VERSIONS,
  DEFAULT_LOCK_TTL_SECONDS,
  MAX_KEEP_VERSIONS,
  MAX_LOCK_TTL_SECONDS,
} from './version-limits.js';
export const KeepVersionsRequest = Type.Object(
  { keep: Type.Integer({ minimum: 1, maximum: MAX_KEEP_VERSIONS }) },
  { additionalProperties: false },
);
export type KeepVersionsRequest = Static<typeof KeepVersionsRequest>;
export const KeepVersionsResponse = Type.Object({
  groupId: GroupId,
  keep: Type.Integer({ minimum: 1 }),
  /** File ids of versions dropped because they fell outside the new retention. */
  dropped: Type.Array(FileId),
});
export type KeepVersionsResponse = Static<typeof KeepVersionsResponse>;

// ---------------------------------------------------------------- tickets and keys

/**
 * POST /v1/groups/:groupId/files/:file/tickets → 201 TicketResponse (members
 * only: 403 NOT_A_MEMBER). The ticket is a compact JWS; verify it with
 * verifyTicket (tickets.ts) and the JWKS from GET /v1/cluster/keys.
 */
export const TicketRequest = Type.Object(
  {
    /** The downloading peer (its certificate fingerprint): seeders check the connection matches. */
    peerId: PeerId,
    /** At most 60 (MAX_TICKET_TTL_SECONDS); default the tracker's (10 minutes unless configured). */
    ttlMinutes: Type.Optional(Type.Integer({ minimum: 1, maximum: 60 })),
  },
  { additionalProperties: false },
);
export type TicketRequest = Static<typeof TicketRequest>;
export const TicketResponse = Type.Object({
  ticket: Type.String(),
  groupId: GroupId,
  fileId: FileId,
  peerId: PeerId,
  expiresAt: TimestampMs,
});
export type TicketResponse = Static<typeof TicketResponse>;

/** GET /v1/cluster/keys → 200 JWKS (public, no authentication). */
export const Jwk = Type.Object(
  {
    kty: Type.String(),
    crv: Type.Optional(Type.String()),
    x: Type.Optional(Type.String()),
    kid: Type.String(),
    alg: Type.String(),
    use: Type.String(),
  },
  { additionalProperties: true },
);
export const ClusterKeys = Type.Object({ keys: Type.Array(Jwk) });
export type ClusterKeys = Static<typeof ClusterKeys>;

// ---------------------------------------------------------------- peer quality

export const MAX_REPORTS_PER_CALL = 256;
export const PeerReport = Type.Object(
  {
    peerId: PeerId,
    fileId: Type.Optional(FileId),
    bytes: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
    seconds: Type.Number({ minimum: 0, maximum: 1e9 }),
    failedPieces: Type.Integer({ minimum: 0, maximum: 1e9 }),
    corruptPieces: Type.Integer({ minimum: 0, maximum: 1e9 }),
  },
  { additionalProperties: false },
);
export type PeerReport = Static<typeof PeerReport>;

/** POST /v1/reports → 200 ReportResponse: a downloader's per-peer results. */
export const ReportRequest = Type.Object(
  { reports: Type.Array(PeerReport, { minItems: 1, maxItems: MAX_REPORTS_PER_CALL }) },
  { additionalProperties: false },
);
export type ReportRequest = Static<typeof ReportRequest>;
export const ReportResponse = Type.Object({
  accepted: Type.Integer({ minimum: 0 }),
  scores: Type.Array(Type.Object({ peerId: PeerId, score: Type.Number(), flagged: Type.Boolean() })),
});
export type ReportResponse = Static<typeof ReportResponse>;

// ---------------------------------------------------------------- messages and topics

/**
 * A client-chosen id per message (a UUID is fine): a send retried with the
 * same id is stored once and answers with the first copy.
 */
export const CLIENT_ID_PATTERN = '^[A-Za-z0-9_.:-]{1,64}$';
export const ClientId = Type.String({ pattern: CLIENT_ID_PATTERN, minLength: 1, maxLength: 64 });
// MESSAGE_ID_PATTERN lives in names.ts: the CLI checks message ids without loading TypeBox.
export { MESSAGE_ID_PATTERN };
export const MessageId = Type.String({ pattern: MESSAGE_ID_PATTERN, minLength: 32, maxLength: 32 });
export const TopicName = Name;
/**
 * A message's text. The schema bounds the characters loosely; the tracker
 * checks the UTF-8 size against its limit (64 KiB by default) and answers
 * 413 MESSAGE_TOO_LARGE.
 */
export const MESSAGE_BODY_MAX_CHARS = 1024 * 1024;
export const MessageBody = Type.String({ minLength: 1, maxLength: MESSAGE_BODY_MAX_CHARS });
export const StreamKind = Type.Union([Type.Literal('direct'), Type.Literal('group'), Type.Literal('topic')]);
export type StreamKind = Static<typeof StreamKind>;
/** `d:<user>:<user>` (sorted), `g:<group>` or `t:<group>:<topic>`. */
export const StreamId = Type.String({ minLength: 3, maxLength: 200 });
export const Seq = Type.Integer({ minimum: 0 });

/**
 * POST /v1/messages → 201 MessageSent (200 when the client id was already
 * used: the first copy's answer). Exactly one target: `to` (a direct
 * message), `groupId` (the group's channel) or `groupId` + `topic` (publish).
 * Group channels and topics: members only (403 NOT_A_MEMBER). 413
 * MESSAGE_TOO_LARGE, 429 RATE_LIMITED, 404 USER_NOT_FOUND / TOPIC_NOT_FOUND.
 */
export const SendMessageRequest = Type.Object(
  {
    to: Type.Optional(UserId),
    groupId: Type.Optional(GroupId),
    topic: Type.Optional(TopicName),
    clientId: ClientId,
    body: MessageBody,
  },
  { additionalProperties: false },
);
export type SendMessageRequest = Static<typeof SendMessageRequest>;
/** Sent = committed to the tracker's store. */
export const MessageSent = Type.Object({
  messageId: MessageId,
  streamId: StreamId,
  seq: Seq,
  state: Type.Literal('sent'),
  sentAt: TimestampMs,
  /** True when this client id had been stored before (a retried send). */
  duplicate: Type.Boolean(),
});
export type MessageSent = Static<typeof MessageSent>;

/** A stored message, as pushed over the session and as fetched. */
export const StoredMessage = Type.Object({
  messageId: MessageId,
  streamId: StreamId,
  seq: Seq,
  kind: StreamKind,
  sender: UserId,
  /** Direct messages: the recipient. */
  to: Type.Optional(UserId),
  groupId: Type.Optional(GroupId),
  topic: Type.Optional(TopicName),
  body: Type.String(),
  sentAt: TimestampMs,
});
export type StoredMessage = Static<typeof StoredMessage>;

export const DeliveryState = Type.Union([
  Type.Literal('sent'),
  Type.Literal('delivered'),
  Type.Literal('read'),
]);
export type DeliveryState = Static<typeof DeliveryState>;

/**
 * GET /v1/messages/:messageId → 200 MessageStatus (the sender and the
 * stream's readers only; else 404 MESSAGE_NOT_FOUND). `state` is the least
 * advanced of the recipients' states.
 */
export const MessageParams = Type.Object({ messageId: MessageId });
export const MessageStatus = Type.Object({
  messageId: MessageId,
  streamId: StreamId,
  seq: Seq,
  kind: StreamKind,
  sender: UserId,
  sentAt: TimestampMs,
  state: DeliveryState,
  recipients: Type.Array(Type.Object({ userId: UserId, state: DeliveryState })),
});
export type MessageStatus = Static<typeof MessageStatus>;

/** Topic retention: the defaults keep 10,000 messages or 30 days, whichever is less. */
export const TOPIC_RETENTION_DEFAULTS = Object.freeze({ count: 10_000, ms: 30 * 24 * 3600 * 1000 });
/** POST /v1/groups/:groupId/topics → 201 TopicSummary (members only; 409 TOPIC_EXISTS). */
export const CreateTopicRequest = Type.Object(
  {
    topic: TopicName,
    retentionCount: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000_000 })),
    retentionMs: Type.Optional(Type.Integer({ minimum: 1000, maximum: 10 * 365 * 24 * 3600 * 1000 })),
  },
  { additionalProperties: false },
);
export type CreateTopicRequest = Static<typeof CreateTopicRequest>;
export const TopicSummary = Type.Object({
  groupId: GroupId,
  topic: TopicName,
  createdBy: UserId,
  createdAt: TimestampMs,
  lastSeq: Seq,
  retentionCount: Type.Integer(),
  retentionMs: Type.Integer(),
  /** Whether the caller subscribes. */
  subscribed: Type.Boolean(),
});
export type TopicSummary = Static<typeof TopicSummary>;
/** GET /v1/groups/:groupId/topics → 200 TopicList (members only). */
export const TopicList = Type.Object({ groupId: GroupId, topics: Type.Array(TopicSummary) });
export type TopicList = Static<typeof TopicList>;
export const TopicParams = Type.Object({ groupId: GroupId, topic: TopicName });
export type TopicParams = Static<typeof TopicParams>;
/**
 * POST …/topics/:topic/subscribe and …/unsubscribe → 200 Subscription.
 * A subscriber receives pushes of what is published after it subscribed,
 * and catches up from its cursor when it reconnects.
 */
export const Subscription = Type.Object({
  groupId: GroupId,
  topic: TopicName,
  subscribed: Type.Boolean(),
  /** The topic's last sequence number when the call was made. */
  lastSeq: Seq,
});
export type Subscription = Static<typeof Subscription>;
/** POST …/topics/:topic/messages → 201 MessageSent: publish (members only). */
export const PublishRequest = Type.Object(
  { clientId: ClientId, body: MessageBody },
  { additionalProperties: false },
);
export type PublishRequest = Static<typeof PublishRequest>;
/** GET …/topics/:topic/messages?from=SEQ&limit=N → 200 MessagePage: the retained messages from SEQ on. */
export const MAX_FETCH_LIMIT = 1000;
export const FetchQuery = Type.Object(
  {
    from: Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$' })),
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,6}$' })),
  },
  { additionalProperties: false },
);
export type FetchQuery = Static<typeof FetchQuery>;
export const MessagePage = Type.Object({
  groupId: GroupId,
  topic: TopicName,
  messages: Type.Array(StoredMessage),
  /** The sequence number to ask for next (`from`), and the topic's last one. */
  nextSeq: Seq,
  lastSeq: Seq,
  /** The oldest retained sequence number (earlier ones were trimmed). */
  firstSeq: Seq,
});
export type MessagePage = Static<typeof MessagePage>;
// ---------------------------------------------------------------- storage peers and replication

/** A storage zone: a label for where a peer is (a room, a house, a rack); '' for none. */
export const Zone = Type.String({ pattern: '^[A-Za-z0-9_.:-]{0,64}$', maxLength: 64 });
/** Bytes (parse people's sizes such as "50GiB" with parseByteSize, sizes.ts). */
export const ByteCount = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
export const ReplicaCount = Type.Integer({ minimum: 0, maximum: 64 });

/**
 * POST /v1/groups/:groupId/storage → 200 StorageOffer (members only: 403
 * NOT_A_MEMBER). The caller's peer `peerId` keeps up to `quotaBytes` of the
 * group's replicas; offering again changes the quota or zone and ends a
 * withdrawal. 403 PEER_MISMATCH when that peer is connected as another user.
 */
export const OfferStorageRequest = Type.Object(
  {
    peerId: PeerId,
    quotaBytes: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
    zone: Type.Optional(Zone),
  },
  { additionalProperties: false },
);
export type OfferStorageRequest = Static<typeof OfferStorageRequest>;
export const StorageOffer = Type.Object({
  groupId: GroupId,
  peerId: PeerId,
  userId: UserId,
  quotaBytes: ByteCount,
  zone: Zone,
  offeredAt: TimestampMs,
});
export type StorageOffer = Static<typeof StorageOffer>;

/**
 * POST /v1/groups/:groupId/storage/withdraw → 200 WithdrawResponse: the
 * caller's offers in the group (of `peerId`, or all its peers) end. Their
 * replicas are first placed elsewhere and dropped once each file has `min`
 * verified replicas without them; with `now` the offers end at once (drops
 * are pushed, repair follows). 404 NOT_FOUND when the caller offers nothing there.
 */
export const WithdrawStorageRequest = Type.Object(
  { peerId: Type.Optional(PeerId), now: Type.Optional(Type.Boolean()) },
  { additionalProperties: false },
);
export type WithdrawStorageRequest = Static<typeof WithdrawStorageRequest>;
export const WithdrawResponse = Type.Object({
  groupId: GroupId,
  peerIds: Type.Array(PeerId),
  /** True with `now`: the offers are gone; false: they drain first. */
  ended: Type.Boolean(),
});
export type WithdrawResponse = Static<typeof WithdrawResponse>;

/** How many verified replicas the group's files have compared to `min`. */
export const ReplicationHealth = Type.Object({
  min: ReplicaCount,
  max: ReplicaCount,
  /** Storage peers offering space to the group (whatever their state). */
  storagePeers: Type.Integer({ minimum: 0 }),
  /** Files with fewer than `min` verified replicas on live or in-grace storage peers. */
  underReplicatedFiles: Type.Integer({ minimum: 0 }),
  /**
   * Files below `min` with a copy on its way (repair, and a new file's first
   * copies), and files at `min` or more getting one (moving off a
   * withdrawing storage peer).
   */
  repairing: Type.Optional(Type.Integer({ minimum: 0 })),
  moving: Type.Optional(Type.Integer({ minimum: 0 })),
  /** For people: e.g. "under-replicated: 2 of 3 (2 storage peers)"; absent when all is well. */
  warning: Type.Optional(Type.String()),
});
export type ReplicationHealth = Static<typeof ReplicationHealth>;

/**
 * POST /v1/groups/:groupId/replication → 200 ReplicationPolicy (owner only:
 * 403 NOT_OWNER; 400 BAD_REQUEST when min > max). `max` defaults to `min`.
 * A `min` above the storage peers available is accepted, and said in `warning`.
 */
export const SetReplicationRequest = Type.Object(
  { min: ReplicaCount, max: Type.Optional(ReplicaCount) },
  { additionalProperties: false },
);
export type SetReplicationRequest = Static<typeof SetReplicationRequest>;
export const ReplicationPolicy = Type.Object({ groupId: GroupId, ...ReplicationHealth.properties });
export type ReplicationPolicy = Static<typeof ReplicationPolicy>;

export const StoragePeerState = Type.Union([
  Type.Literal('live'),
  Type.Literal('grace'),
  Type.Literal('gone'),
]);
export type StoragePeerState = Static<typeof StoragePeerState>;
export const StoragePeerSummary = Type.Object({
  peerId: PeerId,
  userId: UserId,
  zone: Zone,
  quotaBytes: ByteCount,
  /** Bytes of the replicas it holds or was assigned. */
  usedBytes: ByteCount,
  replicasHeld: Type.Integer({ minimum: 0 }),
  replicasAssigned: Type.Integer({ minimum: 0 }),
  /** live: connected; grace: disconnected less than the tracker's storage grace ago; gone: longer. */
  state: StoragePeerState,
  withdrawing: Type.Boolean(),
  /** When the tracker last knew it connected (now, for a live one). */
  lastHeartbeatAt: TimestampMs,
  offeredAt: TimestampMs,
});
export type StoragePeerSummary = Static<typeof StoragePeerSummary>;
/** GET /v1/groups/:groupId/storage → 200 StorageList (members only). */
export const StorageList = Type.Object({
  groupId: GroupId,
  replication: ReplicationHealth,
  peers: Type.Array(StoragePeerSummary),
});
export type StorageList = Static<typeof StorageList>;

// ---------------------------------------------------------------- cluster

/** One live tracker of the cluster and its load. */
export const ClusterMember = Type.Object({
  trackerId: Type.String(),
  /** Its public URL: where peers reach it. */
  url: Type.String(),
  /** SHA-256 (hex) of its certificate when self-signed: peers pin it (protocol/tracker-url.ts). */
  fingerprint: Type.Optional(Type.String({ pattern: '^[0-9a-f]{64}$' })),
  /** Peer sessions connected to it. */
  sessions: Type.Integer({ minimum: 0 }),
  /** HTTP requests per second it served over its last heartbeat period. */
  requestsPerSecond: Type.Number({ minimum: 0 }),
  startedAt: TimestampMs,
  heartbeatAt: TimestampMs,
  /** Where its built-in relay listens and the certificate to pin, `host:port#sha256=…` (absent with --no-relay). */
  relay: Type.Optional(Type.String()),
});
export type ClusterMember = Static<typeof ClusterMember>;

/**
 * GET /v1/cluster → 200 ClusterList (public, no authentication): the live
 * trackers, least loaded first. A tracker is live while it heartbeats.
 */
export const ClusterList = Type.Object({
  trackers: Type.Array(ClusterMember),
  /** Every relay of the cluster, `host:port#sha256=…` (peers pin that certificate): the live trackers' own, then standalone ones (--extra-relay). */
  relays: Type.Optional(Type.Array(Type.String())),
});
export type ClusterList = Static<typeof ClusterList>;

/**
 * Writes (POST, DELETE) may carry this header: a retried call with the same
 * key and caller gets the stored answer (header `idempotent-replay: true`)
 * instead of running twice, on any tracker of the cluster. At most 128
 * characters among [A-Za-z0-9_.:-].
 */
export const IDEMPOTENCY_KEY_HEADER = 'idempotency-key';
export const IDEMPOTENCY_KEY_PATTERN = '^[A-Za-z0-9_.:-]{1,128}$';

// ---------------------------------------------------------------- health

/**
 * The store as /healthz reports it. `acknowledgedOn` says where a write the
 * tracker acknowledged is: on the one machine of the store (SQLite, or a
 * PostgreSQL primary whose commits wait for no standby) or on several (a
 * primary with a synchronous standby). `primary` is empty while none answers.
 */
export const StoreHealth = Type.Object({
  dialect: Type.Union([Type.Literal('sqlite'), Type.Literal('postgres')]),
  primary: Type.Optional(Type.String()),
  acknowledgedOn: Type.Optional(Type.Union([Type.Literal('one-machine'), Type.Literal('several-machines')])),
  synchronousStandbyNames: Type.Optional(Type.String()),
  synchronousCommit: Type.Optional(Type.String()),
  syncStandbys: Type.Optional(Type.Integer({ minimum: 0 })),
});
export type StoreHealth = Static<typeof StoreHealth>;

/** GET /healthz → 200 Health (the process lives; /readyz says whether it can serve). */
export const Health = Type.Object({
  status: Type.Literal('ok'),
  trackerId: Type.String(),
  version: Type.String(),
  sessions: Type.Integer({ minimum: 0 }),
  store: Type.Optional(StoreHealth),
});
export type Health = Static<typeof Health>;

/** GET /readyz → 200 Ready, or 503 UNAVAILABLE while the store has no primary answering. */
export const Ready = Type.Object({ status: Type.Literal('ready') });
export type Ready = Static<typeof Ready>;

// ---------------------------------------------------------------- the route table

/** One route of the API: the single source for the tracker's routes and the client's calls. */
export interface RouteSpec {
  method: 'GET' | 'POST' | 'DELETE';
  url: string;
  auth: boolean;
  summary: string;
  params?: TSchema;
  querystring?: TSchema;
  body?: TSchema;
  /** HTTP status of success and its body schema. */
  status: number;
  response: TSchema;
}

const route = <T extends RouteSpec>(spec: T): T => spec;

export const ROUTES = {
  createUser: route({
    method: 'POST',
    url: '/v1/users',
    auth: false,
    summary: 'create a user',
    body: CreateUserRequest,
    status: 201,
    response: UserCreated,
  }),
  login: route({
    method: 'POST',
    url: '/v1/login',
    auth: false,
    summary: 'log in: returns a bearer token',
    body: LoginRequest,
    status: 200,
    response: LoginResponse,
  }),
  logout: route({
    method: 'POST',
    url: '/v1/logout',
    auth: true,
    summary: 'revoke the calling token',
    status: 200,
    response: LogoutResponse,
  }),
  whoami: route({
    method: 'GET',
    url: '/v1/whoami',
    auth: true,
    summary: 'who the token belongs to',
    status: 200,
    response: WhoAmI,
  }),
  createGroup: route({
    method: 'POST',
    url: '/v1/groups',
    auth: true,
    summary: 'create a group (the caller owns it)',
    body: CreateGroupRequest,
    status: 201,
    response: GroupSummary,
  }),
  listGroups: route({
    method: 'GET',
    url: '/v1/groups',
    auth: true,
    summary: 'list every group with the caller’s standing',
    status: 200,
    response: GroupList,
  }),
  joinGroup: route({
    method: 'POST',
    url: '/v1/groups/:groupId/join',
    auth: true,
    summary: 'ask to join a group',
    params: GroupParams,
    status: 202,
    response: JoinResponse,
  }),
  listRequests: route({
    method: 'GET',
    url: '/v1/groups/:groupId/requests',
    auth: true,
    summary: 'pending join requests (owner only)',
    params: GroupParams,
    status: 200,
    response: JoinRequestList,
  }),
  acceptRequest: route({
    method: 'POST',
    url: '/v1/groups/:groupId/requests/:userId/accept',
    auth: true,
    summary: 'accept a join request (owner only)',
    params: GroupUserParams,
    status: 200,
    response: JoinDecision,
  }),
  declineRequest: route({
    method: 'POST',
    url: '/v1/groups/:groupId/requests/:userId/decline',
    auth: true,
    summary: 'decline a join request (owner only)',
    params: GroupUserParams,
    status: 200,
    response: JoinDecision,
  }),
  listMembers: route({
    method: 'GET',
    url: '/v1/groups/:groupId/members',
    auth: true,
    summary: 'members of a group (members only)',
    params: GroupParams,
    status: 200,
    response: MemberList,
  }),
  removeMember: route({
    method: 'POST',
    url: '/v1/groups/:groupId/members/:userId/remove',
    auth: true,
    summary: 'remove a member and revoke their tickets (owner only)',
    params: GroupUserParams,
    status: 200,
    response: RemoveMemberResponse,
  }),
  leaveGroup: route({
    method: 'POST',
    url: '/v1/groups/:groupId/leave',
    auth: true,
    summary: 'leave a group',
    params: GroupParams,
    status: 200,
    response: LeaveResponse,
  }),
  shareFile: route({
    method: 'POST',
    url: '/v1/groups/:groupId/files',
    auth: true,
    summary: 'share a file (its manifest) with a group (members only)',
    params: GroupParams,
    body: ShareRequest,
    status: 201,
    response: ShareResponse,
  }),
  putManifestPage: route({
    method: 'POST',
    url: '/v1/groups/:groupId/manifest-pages',
    auth: true,
    summary: 'upload one page of a folder’s manifest (members only)',
    params: GroupParams,
    body: ManifestPageSchema,
    status: 200,
    response: ManifestPageResponse,
  }),
  getManifestPage: route({
    method: 'GET',
    url: '/v1/groups/:groupId/manifest-pages/:hash',
    auth: true,
    summary: 'one page of a folder’s manifest, by its hash (members only)',
    params: ManifestPageParams,
    status: 200,
    response: ManifestPageSchema,
  }),
  listFiles: route({
    method: 'GET',
    url: '/v1/groups/:groupId/files',
    auth: true,
    summary: 'files shared in a group (members only)',
    params: GroupParams,
    status: 200,
    response: FileList,
  }),
  getFile: route({
    method: 'GET',
    url: '/v1/groups/:groupId/files/:file',
    auth: true,
    summary: 'a file’s manifest and live seeders (members only)',
    params: GroupFileParams,
    querystring: VersionQuery,
    status: 200,
    response: FileDetail,
  }),
  getSeeders: route({
    method: 'GET',
    url: '/v1/groups/:groupId/files/:file/seeders',
    auth: true,
    summary: 'a file’s live seeders, best first (members only)',
    params: GroupFileParams,
    querystring: VersionQuery,
    status: 200,
    response: SeederList,
  }),
  stopSharing: route({
    method: 'DELETE',
    url: '/v1/groups/:groupId/files/:file',
    auth: true,
    summary: 'stop sharing a file in a group',
    params: GroupFileParams,
    querystring: StopShareQuery,
    status: 200,
    response: StopShareResponse,
  }),
  getTicket: route({
    method: 'POST',
    url: '/v1/groups/:groupId/files/:file/tickets',
    auth: true,
    summary: 'a signed download ticket (members only)',
    params: GroupFileParams,
    querystring: VersionQuery,
    body: TicketRequest,
    status: 201,
    response: TicketResponse,
  }),
  updateFile: route({
    method: 'POST',
    url: '/v1/groups/:groupId/files/:file/versions',
    auth: true,
    summary: 'share new content as the next version of a name (ifVersion: compare-and-set)',
    params: GroupFileParams,
    body: UpdateRequest,
    status: 201,
    response: UpdateResponse,
  }),
  listVersions: route({
    method: 'GET',
    url: '/v1/groups/:groupId/files/:file/versions',
    auth: true,
    summary: 'the retained versions of a name, newest first, and its lock (members only)',
    params: GroupFileParams,
    status: 200,
    response: VersionList,
  }),
  deleteFile: route({
    method: 'POST',
    url: '/v1/groups/:groupId/files/:file/delete',
    auth: true,
    summary: 'delete a name and every version of it (an author or the group owner)',
    params: GroupFileParams,
    status: 200,
    response: DeleteResponse,
  }),
  lockFile: route({
    method: 'POST',
    url: '/v1/groups/:groupId/files/:file/lock',
    auth: true,
    summary: 'take or renew the lock of a name (members only)',
    params: GroupFileParams,
    body: LockRequest,
    status: 200,
    response: FileLock,
  }),
  unlockFile: route({
    method: 'POST',
    url: '/v1/groups/:groupId/files/:file/unlock',
    auth: true,
    summary: 'release the lock of a name (its holder or the group owner)',
    params: GroupFileParams,
    status: 200,
    response: UnlockResponse,
  }),
  keepVersions: route({
    method: 'POST',
    url: '/v1/groups/:groupId/versions',
    auth: true,
    summary: 'how many versions of each name the group keeps (owner only)',
    params: GroupParams,
    body: KeepVersionsRequest,
    status: 200,
    response: KeepVersionsResponse,
  }),
  clusterKeys: route({
    method: 'GET',
    url: '/v1/cluster/keys',
    auth: false,
    summary: 'the cluster’s public ticket keys (JWKS)',
    status: 200,
    response: ClusterKeys,
  }),
  cluster: route({
    method: 'GET',
    url: '/v1/cluster',
    auth: false,
    summary: 'the live trackers of the cluster with their load, least loaded first',
    status: 200,
    response: ClusterList,
  }),
  report: route({
    method: 'POST',
    url: '/v1/reports',
    auth: true,
    summary: 'report per-peer download results',
    body: ReportRequest,
    status: 200,
    response: ReportResponse,
  }),
  sendMessage: route({
    method: 'POST',
    url: '/v1/messages',
    auth: true,
    summary: 'send a direct message, a group message or publish to a topic',
    body: SendMessageRequest,
    status: 201,
    response: MessageSent,
  }),
  messageStatus: route({
    method: 'GET',
    url: '/v1/messages/:messageId',
    auth: true,
    summary: 'a message’s state per recipient (sender and readers only)',
    params: MessageParams,
    status: 200,
    response: MessageStatus,
  }),
  createTopic: route({
    method: 'POST',
    url: '/v1/groups/:groupId/topics',
    auth: true,
    summary: 'create a topic in a group (members only)',
    params: GroupParams,
    body: CreateTopicRequest,
    status: 201,
    response: TopicSummary,
  }),
  listTopics: route({
    method: 'GET',
    url: '/v1/groups/:groupId/topics',
    auth: true,
    summary: 'a group’s topics (members only)',
    params: GroupParams,
    status: 200,
    response: TopicList,
  }),
  subscribe: route({
    method: 'POST',
    url: '/v1/groups/:groupId/topics/:topic/subscribe',
    auth: true,
    summary: 'subscribe to a topic (members only)',
    params: TopicParams,
    status: 200,
    response: Subscription,
  }),
  unsubscribe: route({
    method: 'POST',
    url: '/v1/groups/:groupId/topics/:topic/unsubscribe',
    auth: true,
    summary: 'unsubscribe from a topic',
    params: TopicParams,
    status: 200,
    response: Subscription,
  }),
  publish: route({
    method: 'POST',
    url: '/v1/groups/:groupId/topics/:topic/messages',
    auth: true,
    summary: 'publish to a topic (members only)',
    params: TopicParams,
    body: PublishRequest,
    status: 201,
    response: MessageSent,
  }),
  fetchMessages: route({
    method: 'GET',
    url: '/v1/groups/:groupId/topics/:topic/messages',
    auth: true,
    summary: 'a range of a topic’s retained messages by sequence number (members only)',
    params: TopicParams,
    querystring: FetchQuery,
    status: 200,
    response: MessagePage,
  }),
  offerStorage: route({
    method: 'POST',
    url: '/v1/groups/:groupId/storage',
    auth: true,
    summary: 'offer a peer’s space to keep replicas of the group’s files (members only)',
    params: GroupParams,
    body: OfferStorageRequest,
    status: 200,
    response: StorageOffer,
  }),
  withdrawStorage: route({
    method: 'POST',
    url: '/v1/groups/:groupId/storage/withdraw',
    auth: true,
    summary: 'end the caller’s storage offers in a group (replicas move first unless now)',
    params: GroupParams,
    body: WithdrawStorageRequest,
    status: 200,
    response: WithdrawResponse,
  }),
  listStorage: route({
    method: 'GET',
    url: '/v1/groups/:groupId/storage',
    auth: true,
    summary: 'the group’s storage peers and replication health (members only)',
    params: GroupParams,
    status: 200,
    response: StorageList,
  }),
  setReplication: route({
    method: 'POST',
    url: '/v1/groups/:groupId/replication',
    auth: true,
    summary: 'set how many replicas the group’s files keep on storage peers (owner only)',
    params: GroupParams,
    body: SetReplicationRequest,
    status: 200,
    response: ReplicationPolicy,
  }),
} as const;

export type RouteName = keyof typeof ROUTES;

/** The WebSocket presence session (see session.ts). */
export const SESSION_PATH = '/v1/session';
export const OPENAPI_PATH = '/v1/openapi.json';
