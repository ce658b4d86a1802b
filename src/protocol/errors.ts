/**
 * The closed list of error codes shared by tracker, peer, wire and CLI.
 * Every error that crosses a process boundary carries one of these codes;
 * nobody matches on message text. The README's error table is tested
 * against this list (test/unit/errors-doc.test.ts).
 */
export const ERROR_STATUS = {
  // generic request problems
  BAD_REQUEST: 400,
  INVALID_NAME: 400,
  NOT_FOUND: 404,
  BODY_TOO_LARGE: 413,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  UNAVAILABLE: 503,
  // at rest: the data directories and the keys kept in them
  UNSAFE_PERMISSIONS: 500,
  KEY_MISMATCH: 500,
  // accounts and sessions
  UNAUTHENTICATED: 401,
  /** A request from another site or address than the web UI's own page (Origin, Host, CSRF token). */
  FORBIDDEN: 403,
  BAD_CREDENTIALS: 401,
  USER_EXISTS: 409,
  USER_NOT_FOUND: 404,
  // groups
  GROUP_EXISTS: 409,
  GROUP_NOT_FOUND: 404,
  NOT_A_MEMBER: 403,
  NOT_OWNER: 403,
  ALREADY_MEMBER: 409,
  REQUEST_NOT_FOUND: 404,
  // files and tickets
  INVALID_MANIFEST: 400,
  FILE_NOT_FOUND: 404,
  FILE_NAME_TAKEN: 409,
  NOT_SHARING: 404,
  TICKET_INVALID: 403,
  TICKET_EXPIRED: 403,
  TICKET_WRONG_FILE: 403,
  TICKET_WRONG_PEER: 403,
  TICKET_REVOKED: 403,
  // versions, deletes and locks of a file name
  VERSION_CONFLICT: 409,
  VERSION_NOT_FOUND: 404,
  FILE_LOCKED: 423,
  NOT_AUTHOR: 403,
  // the wire protocol and downloads
  PROTOCOL_ERROR: 400,
  FRAME_TOO_LARGE: 400,
  PEER_MISMATCH: 403,
  PIECE_OUT_OF_RANGE: 400,
  PIECE_UNAVAILABLE: 404,
  BUSY: 503,
  CORRUPT_PIECE: 502,
  NO_SEEDERS: 503,
  DOWNLOAD_FAILED: 502,
  DOWNLOAD_NOT_FOUND: 404,
  DESTINATION_EXISTS: 409,
  PATH_INVALID: 400,
  DISK_FULL: 507,
  // relays (issue 19)
  /** A relay's limits (circuits per user or per relay, reservations) are reached: try another relay or later. */
  RELAY_BUSY: 503,
  /** A relay refused a reservation or circuit: no valid session token, or another user's peer id. */
  RELAY_FORBIDDEN: 403,
  /** A relay's certificate is not the one its listing pins (`host:port#sha256=…`): refused before any token is sent. */
  RELAY_CERT_CHANGED: 502,
  // messages and topics
  MESSAGE_TOO_LARGE: 413,
  MESSAGE_NOT_FOUND: 404,
  TOPIC_EXISTS: 409,
  TOPIC_NOT_FOUND: 404,
  // the peer daemon and the CLI
  USAGE: 400,
  UNKNOWN_COMMAND: 400,
  DAEMON_NOT_RUNNING: 503,
  NOT_LOGGED_IN: 401,
  TRACKER_UNAVAILABLE: 503,
  TRACKER_CERT_CHANGED: 502,
} as const satisfies Record<string, number>;

export type ErrorCode = keyof typeof ERROR_STATUS;

export const ERROR_CODES = Object.freeze(Object.keys(ERROR_STATUS) as ErrorCode[]);

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_STATUS, value);
}

/** The JSON body of every API error: `{"error": {"code", "message"}}`. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: Record<string, unknown> };
}

/**
 * The one error class of Coterie. `code` is stable and machine-readable;
 * `message` says what to do about it.
 */
export class CoterieError extends Error {
  override readonly name = 'CoterieError';
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options?: { cause?: unknown; details?: Record<string, unknown> },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options?.details;
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }

  toJSON(): ErrorBody {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.details === undefined ? {} : { details: this.details }),
      },
    };
  }

  /**
   * Anything caught, as a CoterieError. One that already is passes through
   * unchanged: its code says more than the fallback. Anything else gets
   * `fallbackCode`, a message (`message`, or what it makes of the error's
   * own text, or that text) and itself as the cause.
   */
  static from(
    err: unknown,
    fallbackCode: ErrorCode,
    message?: string | ((text: string) => string),
  ): CoterieError {
    if (err instanceof CoterieError) return err;
    const text = err instanceof Error ? err.message : String(err);
    const said = message === undefined ? text : typeof message === 'string' ? message : message(text);
    return new CoterieError(fallbackCode, said, { cause: err });
  }

  /** Rebuilds an error received as an API body; unknown shapes become INTERNAL. */
  static fromBody(body: unknown, fallbackMessage = 'unexpected error response'): CoterieError {
    if (typeof body === 'object' && body !== null && 'error' in body) {
      const inner = (body as { error: unknown }).error;
      if (typeof inner === 'object' && inner !== null) {
        const { code, message, details } = inner as { code?: unknown; message?: unknown; details?: unknown };
        if (isErrorCode(code)) {
          return new CoterieError(code, typeof message === 'string' ? message : fallbackMessage, {
            details:
              typeof details === 'object' && details !== null
                ? (details as Record<string, unknown>)
                : undefined,
          });
        }
      }
    }
    return new CoterieError('INTERNAL', fallbackMessage);
  }
}

export function isCoterieError(err: unknown, code?: ErrorCode): err is CoterieError {
  return err instanceof CoterieError && (code === undefined || err.code === code);
}
