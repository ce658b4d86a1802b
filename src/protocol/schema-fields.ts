/**
 * The field schemas every protocol module builds on: ids and names, and the
 * optional request id that session frames echo. One definition here, because
 * session.ts imports its session-*.ts parts and so they cannot import it; and
 * small, so that relay-schemas.ts (loaded with the first relay connection)
 * does not pull in the whole REST API's schemas.
 */
import { Type } from '@sinclair/typebox';
import { HEX64_PATTERN, NAME_PATTERN } from './names.js';

/** User ids, group ids: `[a-z0-9_.-]{1,64}`. A mismatch is `400 INVALID_NAME`. */
export const Name = Type.String({ pattern: NAME_PATTERN, minLength: 1, maxLength: 64 });
/** SHA-256 hex: file ids and peer ids. */
export const Hex64 = Type.String({ pattern: HEX64_PATTERN, minLength: 64, maxLength: 64 });
/** Optional request id of a session frame, echoed in `ack` / `error`. */
export const RequestId = Type.Optional(Type.Union([Type.String({ maxLength: 64 }), Type.Integer()]));
