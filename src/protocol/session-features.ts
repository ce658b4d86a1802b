/**
 * Optional session features, part of the session protocol of session.ts: the
 * tracker's `welcome` lists the ones it offers (`features`), and a client
 * switches some on with `enable` after the welcome.
 *
 * Why not ask in the hello: a tracker before the `features` list refuses a hello
 * carrying a field it does not know (BAD_HELLO), so a client could only ask a
 * tracker it already knew to be new. The welcome says what this one offers; a
 * client asks for nothing of a tracker whose welcome has no list, and reaches
 * every version.
 *
 * When a feature applies: the tracker handles `enable` in the session's frame
 * order and switches on before it answers. Every frame the tracker writes after
 * it handled the `enable` is in the new form: the `ack` of the enable (when it
 * carries an id), the answers to the client's later frames, and pushes. Frames
 * written before (a catch-up's pushes, receipts, answers to sends made before the
 * enable) may come in either form, so a client enables only features whose frames
 * it already reads alongside the old ones. A feature stays on for the session's
 * life; a new session starts with none.
 *
 * A frame that names a feature this tracker does not offer is refused whole
 * (PROTOCOL_ERROR, nothing switched on): the welcome listed exactly what it
 * offers, so such a client misread it, and an `ack` must mean that every
 * feature named is in force.
 */
import { type Static, Type } from '@sinclair/typebox';
import { RequestId } from './schema-fields.js';

/**
 * The features this protocol version defines, as a tracker lists them:
 * - `sentBatches`: the answers to the client's sends that one commit made durable come in one
 *   `sent_batch` frame instead of a `sent` each;
 * - `receiptBatches`: the receipts one commit of acknowledgements made for the client come in one
 *   `receipts` frame instead of a `receipt` each.
 */
export const SESSION_FEATURES = Object.freeze(['sentBatches', 'receiptBatches'] as const);
export type SessionFeature = (typeof SESSION_FEATURES)[number];

/** Cap on names in an `enable`: a few are defined, a longer list is junk. */
export const MAX_SESSION_FEATURES = 32;
/** A feature's name in an `enable`: a word, as the defined ones are. */
const FeatureName = Type.String({ pattern: '^[A-Za-z][A-Za-z0-9]{0,31}$', minLength: 1, maxLength: 32 });

/**
 * The list in `welcome`: what this tracker offers. Absent from trackers before it (offer nothing).
 * Any strings, uncapped but for the frame's own cap: a client ignores the names it does not know,
 * and a stricter schema here would make it refuse the welcome of a later tracker, and so that
 * tracker, over a name it would never ask for.
 */
export const WelcomeFeatures = Type.Optional(Type.Array(Type.String()));

/** Switch features on, after `welcome`, with names the welcome listed. Answered by `ack` (with an id) or `error`. */
export const EnableMessage = Type.Object(
  {
    type: Type.Literal('enable'),
    id: RequestId,
    features: Type.Array(FeatureName, { minItems: 1, maxItems: MAX_SESSION_FEATURES }),
  },
  { additionalProperties: false },
);
export type EnableMessage = Static<typeof EnableMessage>;

/** Whether `name` is a feature this protocol version defines. */
export function isSessionFeature(name: string): name is SessionFeature {
  return (SESSION_FEATURES as readonly string[]).includes(name);
}
