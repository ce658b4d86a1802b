/**
 * The relay's control frames as TypeBox schemas, and their compiled checks (protocol in
 * relay.ts). Their own module so that TypeBox loads with the first relay connection
 * (relayFrameChecks() in relay.ts), not with every process that imports the wire.
 */
import { type Static, Type } from '@sinclair/typebox';
import { type TypeCheck, TypeCompiler } from '@sinclair/typebox/compiler';
import { ERROR_CODES } from './errors.js';
import { Hex64 } from './schema-fields.js';

const Token = Type.String({ minLength: 1, maxLength: 256 });
const CircuitId = Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' });

export const RelayClientFrame = Type.Union([
  Type.Object(
    { t: Type.Literal('reserve'), v: Type.Integer({ minimum: 1 }), token: Token, peerId: Hex64 },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      t: Type.Literal('connect'),
      v: Type.Integer({ minimum: 1 }),
      token: Token,
      peerId: Hex64,
      target: Hex64,
    },
    { additionalProperties: false },
  ),
  Type.Object(
    { t: Type.Literal('accept'), v: Type.Integer({ minimum: 1 }), token: Token, circuit: CircuitId },
    { additionalProperties: false },
  ),
]);
export type RelayClientFrame = Static<typeof RelayClientFrame>;

export const RelayServerFrame = Type.Union([
  Type.Object(
    {
      t: Type.Literal('reserved'),
      expiresAt: Type.Integer({ minimum: 0 }),
      ttlMs: Type.Integer({ minimum: 1 }),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    { t: Type.Literal('incoming'), circuit: CircuitId, from: Hex64 },
    { additionalProperties: false },
  ),
  Type.Object({ t: Type.Literal('connected'), peer: Hex64 }, { additionalProperties: false }),
  Type.Object(
    {
      t: Type.Literal('refused'),
      code: Type.Union(ERROR_CODES.map((c) => Type.Literal(c))),
      message: Type.String({ maxLength: 1024 }),
    },
    { additionalProperties: false },
  ),
]);
export type RelayServerFrame = Static<typeof RelayServerFrame>;

/** The compiled check of the frames each side sends. */
export interface RelayFrameChecks {
  client: TypeCheck<typeof RelayClientFrame>;
  server: TypeCheck<typeof RelayServerFrame>;
}

export const RELAY_FRAME_CHECKS: RelayFrameChecks = {
  client: TypeCompiler.Compile(RelayClientFrame),
  server: TypeCompiler.Compile(RelayServerFrame),
};
