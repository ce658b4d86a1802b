/**
 * The session messages of storage peers (issue 16), part of the session
 * protocol of session.ts: the peer's `replicas` report, the tracker's
 * `replicate` and `drop` orders.
 */
import { type Static, Type } from '@sinclair/typebox';
import { Hex64, Name, RequestId } from './schema-fields.js';

/** The same cap as MAX_FILES_PER_MESSAGE (session.ts, which imports this file). */
const MAX_FILES = 8192;
const FileIds = Type.Array(Hex64, { maxItems: MAX_FILES });

/** Cap on groups in one `replicas` report. */
export const MAX_REPLICA_GROUPS_PER_MESSAGE = 64;
/**
 * A storage peer's account of its replicas (issue 16), sent after `welcome`
 * and whenever one changes. Per group: `held` verified copies, `corrupt` ones
 * its scrub found damaged, `missing` ones it was assigned or held and does
 * not have (a fetch that failed, a file gone from its disk): corrupt and
 * missing copies are dropped there and placed elsewhere. With `complete`,
 * `held` and `corrupt` are everything it keeps for that group: replicas the
 * tracker thought it held and it does not list are forgotten. `fetching`:
 * assigned replicas whose fetch made progress since the peer's last report
 * (sent every few seconds while fetches move, with `held` empty): the tracker
 * gives an assignment up only after a while without progress. Answered by `ack`.
 */
export const ReplicasMessage = Type.Object(
  {
    type: Type.Literal('replicas'),
    id: RequestId,
    groups: Type.Array(
      Type.Object(
        {
          groupId: Name,
          held: FileIds,
          corrupt: Type.Optional(FileIds),
          missing: Type.Optional(FileIds),
          fetching: Type.Optional(FileIds),
          complete: Type.Optional(Type.Boolean()),
        },
        { additionalProperties: false },
      ),
      { minItems: 1, maxItems: MAX_REPLICA_GROUPS_PER_MESSAGE },
    ),
  },
  { additionalProperties: false },
);
export type ReplicasMessage = Static<typeof ReplicasMessage>;

/**
 * To a storage peer: keep a replica of this file of the group. Fetch it like
 * any download (manifest, seeders and a ticket from the tracker's API, as a
 * member), verify every piece, then report it in `replicas` as held (or as
 * missing when it cannot). Sent again after each hello and report while the
 * assignment stands: doing it twice must be harmless.
 */
export const ReplicateOrder = Type.Object({
  type: Type.Literal('replicate'),
  groupId: Name,
  fileId: Hex64,
  size: Type.Integer({ minimum: 0 }),
  at: Type.Integer(),
});
export type ReplicateOrder = Static<typeof ReplicateOrder>;
/**
 * To a storage peer: this replica is no longer wanted (surplus beyond max,
 * the file left the group, the peer's offer ended, or it was reported
 * corrupt): stop serving it for the group and free its space.
 */
export const DropOrder = Type.Object({
  type: Type.Literal('drop'),
  groupId: Name,
  fileId: Hex64,
  reason: Type.Union([
    Type.Literal('surplus'),
    Type.Literal('withdrawn'),
    Type.Literal('corrupt'),
    Type.Literal('unlisted'),
    Type.Literal('unoffered'),
  ]),
  at: Type.Integer(),
});
export type DropOrder = Static<typeof DropOrder>;
