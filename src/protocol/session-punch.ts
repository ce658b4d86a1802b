/**
 * The session messages of hole punching (issue 19), part of the session
 * protocol of session.ts. A downloader that cannot reach a seeder over TCP,
 * and sees a `udp://` address among its addresses (its public UDP endpoint,
 * as a tracker's UDP reflector saw it), sends `punch` with its own; the
 * tracker acks it at once and pushes `punch` to the seeder's session, on
 * whichever tracker of the cluster holds it. From the ack (the dialler) and
 * the push (the seeder) both send datagrams to each other's endpoint, so
 * both NATs let the other's in, and the dialler's stream opens over the
 * punched path (protocol/punch.ts).
 */
import { type Static, Type } from '@sinclair/typebox';
import { Hex64 } from './schema-fields.js';

/** host:port, as protocol/addresses.ts spells it. */
const Endpoint = Type.String({ minLength: 3, maxLength: 300 });
const Nonce = Type.String({ pattern: '^[0-9a-f]{8,64}$' });

/** Client → tracker: punch to peer `peerId`; `endpoint` is the sender's public UDP endpoint. */
export const PunchMessage = Type.Object(
  {
    type: Type.Literal('punch'),
    id: Type.Optional(Type.Union([Type.String({ maxLength: 64 }), Type.Integer()])),
    peerId: Hex64,
    endpoint: Endpoint,
    /** Names the attempt: the probes and the stream's `open` carry it. */
    n: Nonce,
  },
  { additionalProperties: false },
);
export type PunchMessage = Static<typeof PunchMessage>;

/** Tracker → the seeder: peer `from` is punching from `endpoint`: probe it now. */
export const PunchEvent = Type.Object({
  type: Type.Literal('punch'),
  from: Hex64,
  endpoint: Endpoint,
  n: Nonce,
  at: Type.Integer(),
});
export type PunchEvent = Static<typeof PunchEvent>;
