import type { CryptoKey, JSONWebKeySet, JWK } from 'jose';
import { CoterieError } from './errors.js';

/**
 * jose, loaded with the first ticket signed or checked: the wire's frames need this module's
 * limits, and jose's 47 files cost every process that loads them ~40 ms of CPU at start,
 * a downloader's included, which only reads its own ticket's times (readTicketTimes).
 */
const jose = () => import('jose');

type KeySet = ReturnType<Awaited<ReturnType<typeof jose>>['createLocalJWKSet']>;
/**
 * The key set jose verifies against, one per JWKS object: jose imports a key the first time a
 * ticket names it and keeps it in the key set. Made anew for every ticket, every connection a
 * seeder accepted imported the cluster's key again (about a third of checking a ticket, seen in
 * a swarm's first second). A JWKS is replaced, not changed, when the keys rotate (ticket-guard.ts).
 */
const keySets = new WeakMap<object, KeySet>();

/**
 * A download ticket: the tracker cluster's signed statement that `user`,
 * downloading through peer `peer`, may fetch file `file` of group `group`
 * until `exp`. Seeders check it offline with the cluster's published keys.
 * Encoded as a compact JWS (JWT) signed with Ed25519 (alg EdDSA).
 */
export interface TicketClaims {
  user: string;
  peer: string;
  file: string;
  group: string;
  /** Expiry, seconds since the epoch. */
  exp: number;
  /** Issued at, seconds since the epoch. */
  iat: number;
}

export const TICKET_TYPE = 'coterie-ticket+jwt';
export const TICKET_ALG = 'EdDSA';
/** Longest accepted ticket, in characters: a guard before any parsing. */
export const MAX_TICKET_LENGTH = 4096;
/**
 * The longest lifetime a tracker signs (and a client may ask for): a ticket
 * binds its holder only this long, and a revocation a seeder missed stops
 * mattering once every ticket issued before it has expired.
 */
export const MAX_TICKET_TTL_SECONDS = 60 * 60;
/** The lifetime a tracker signs by default; downloaders renew before it ends. */
export const DEFAULT_TICKET_TTL_SECONDS = 10 * 60;

export async function signTicket(
  claims: Omit<TicketClaims, 'iat' | 'exp'> & { ttlSeconds: number; nowSeconds?: number },
  key: { privateKey: CryptoKey | Uint8Array; kid: string },
): Promise<string> {
  const iat = claims.nowSeconds ?? Math.floor(Date.now() / 1000);
  const { SignJWT } = await jose();
  return new SignJWT({ peer: claims.peer, file: claims.file, group: claims.group })
    .setProtectedHeader({ alg: TICKET_ALG, typ: TICKET_TYPE, kid: key.kid })
    .setSubject(claims.user)
    .setIssuedAt(iat)
    .setExpirationTime(iat + claims.ttlSeconds)
    .sign(key.privateKey);
}

export interface TicketExpectations {
  /** The file the connection asks for. */
  fileId?: string;
  /** The peer id of the connecting peer (its certificate's fingerprint). */
  peerId?: string;
  /** For tests: the current time in seconds. */
  nowSeconds?: number;
}

/**
 * Verifies a ticket against the cluster's public keys (a JWKS as served at
 * /v1/cluster/keys). Throws CoterieError with TICKET_* codes; never a raw error.
 */
export async function verifyTicket(
  token: string,
  keys: JSONWebKeySet | { keys: JWK[] },
  expect: TicketExpectations = {},
): Promise<TicketClaims> {
  if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TICKET_LENGTH) {
    throw new CoterieError('TICKET_INVALID', 'ticket missing or too long: ask the tracker for a new one');
  }
  const { createLocalJWKSet, errors: joseErrors, jwtVerify } = await jose();
  let keySet = keySets.get(keys);
  if (keySet === undefined) {
    keySet = createLocalJWKSet(keys as JSONWebKeySet);
    keySets.set(keys, keySet);
  }
  let payload: Record<string, unknown>;
  try {
    const result = await jwtVerify(token, keySet, {
      algorithms: [TICKET_ALG],
      typ: TICKET_TYPE,
      ...(expect.nowSeconds === undefined ? {} : { currentDate: new Date(expect.nowSeconds * 1000) }),
    });
    payload = result.payload as Record<string, unknown>;
  } catch (err) {
    if (err instanceof joseErrors.JWTExpired) {
      throw new CoterieError('TICKET_EXPIRED', 'ticket expired: ask the tracker for a new one', {
        cause: err,
      });
    }
    throw new CoterieError('TICKET_INVALID', 'ticket signature or format invalid', { cause: err });
  }
  const { sub, peer, file, group, exp, iat } = payload;
  if (
    typeof sub !== 'string' ||
    typeof peer !== 'string' ||
    typeof file !== 'string' ||
    typeof group !== 'string' ||
    typeof exp !== 'number' ||
    typeof iat !== 'number'
  ) {
    throw new CoterieError('TICKET_INVALID', 'ticket lacks required claims');
  }
  if (expect.fileId !== undefined && file !== expect.fileId) {
    throw new CoterieError('TICKET_WRONG_FILE', 'ticket is for another file');
  }
  if (expect.peerId !== undefined && peer !== expect.peerId) {
    throw new CoterieError('TICKET_WRONG_PEER', 'ticket was issued to another peer');
  }
  return { user: sub, peer, file, group, exp, iat };
}

/**
 * The issue and expiry times of a ticket, read WITHOUT checking its
 * signature: for the downloader holding its own ticket, to know when to
 * renew it. Never a basis for trusting anything; undefined when unreadable.
 */
export function readTicketTimes(token: string): { iat: number; exp: number } | undefined {
  const part = typeof token === 'string' ? token.split('.')[1] : undefined;
  if (part === undefined || part.length > MAX_TICKET_LENGTH) return undefined;
  try {
    const { iat, exp } = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<
      string,
      unknown
    >;
    if (typeof iat !== 'number' || typeof exp !== 'number' || !(exp >= iat)) return undefined;
    return { iat, exp };
  } catch {
    return undefined;
  }
}
