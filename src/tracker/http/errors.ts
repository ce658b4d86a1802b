import type { FastifyError } from 'fastify';
import { CoterieError, isCoterieError } from '../../protocol/errors.js';
import { NAME_PATTERN } from '../../protocol/names.js';

/**
 * Maps anything thrown while serving a request to a CoterieError, so every
 * response is `{"error":{"code","message"}}` with a code from the closed list.
 * Returns undefined for a real bug (the caller logs it and answers INTERNAL).
 */
export function toCoterieError(err: unknown): CoterieError | undefined {
  if (isCoterieError(err)) return err;
  const e = err as FastifyError & {
    validation?: {
      instancePath: string;
      message?: string;
      params?: Record<string, unknown>;
      keyword: string;
    }[];
    validationContext?: string;
  };
  if (Array.isArray(e.validation) && e.validation.length > 0) {
    const first = e.validation[0]!;
    const where = `${e.validationContext ?? 'request'}${first.instancePath || ''}`;
    if (first.keyword === 'pattern' && first.params?.pattern === NAME_PATTERN) {
      return new CoterieError(
        'INVALID_NAME',
        `invalid name at ${where}: use 1 to 64 characters among a-z, 0-9, '_', '.' and '-'`,
      );
    }
    const extra =
      first.keyword === 'additionalProperties' ? ` '${String(first.params?.additionalProperty)}'` : '';
    return new CoterieError(
      'BAD_REQUEST',
      `invalid ${where}: ${first.message ?? 'does not match the schema'}${extra} (see /v1/openapi.json)`,
    );
  }
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new CoterieError('BODY_TOO_LARGE', 'request body too large: send a smaller body');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new CoterieError(
        'BAD_REQUEST',
        'unsupported content type: send JSON with Content-Type: application/json',
      );
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new CoterieError('BAD_REQUEST', 'empty JSON body: send a JSON object');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new CoterieError('BAD_REQUEST', 'Content-Length does not match the body');
  }
  if (err instanceof SyntaxError || e.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
    return new CoterieError('BAD_REQUEST', 'request body is not valid JSON');
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new CoterieError(
      e.statusCode === 413 ? 'BODY_TOO_LARGE' : 'BAD_REQUEST',
      `bad request: ${e.message}`,
    );
  }
  return undefined;
}
