/**
 * The cluster's signing keys at rest: each private JWK is stored in the
 * database as a compact JWE (`dir` + A256GCM) under a 256-bit key kept
 * outside it, in a 0600 file (`tracker.key`). A copied database alone signs
 * nothing; every tracker of a cluster is given the same key file.
 */
import { createHash, randomBytes } from 'node:crypto';
import { linkSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { CompactEncrypt, compactDecrypt, decodeProtectedHeader, type JWK } from 'jose';
import { narrowExistingFiles, PRIVATE_FILE_MODE } from '../../os/private-files.js';
import { CoterieError } from '../../protocol/errors.js';

const KEY_BYTES = 32;

export interface WrappingKey {
  /** The 32 key bytes. */
  readonly bytes: Uint8Array;
  /** A short fingerprint (SHA-256, 16 hex digits): which key file wrapped a row, for the error message. */
  readonly id: string;
  /** Where it was read from. */
  readonly path: string;
}

const fingerprint = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex').slice(0, 16);

const copyAdvice = (path: string) =>
  `copy tracker.key from a tracker of this cluster to ${path} (or pass its path with --key-file)`;

function parseKeyFile(path: string, text: string): WrappingKey {
  const bytes = Buffer.from(text.trim(), 'base64url');
  if (bytes.length !== KEY_BYTES || bytes.toString('base64url') !== text.trim()) {
    throw new CoterieError(
      'KEY_MISMATCH',
      `${path} is no tracker key file (one line: ${KEY_BYTES} bytes in base64url): ${copyAdvice(path)}`,
    );
  }
  return { bytes: new Uint8Array(bytes), id: fingerprint(bytes), path };
}

/** The key file at PATH, or undefined when there is none yet. Narrows a loose mode to 0600. */
export function readKeyFile(path: string): WrappingKey | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CoterieError('USAGE', `cannot read the key file ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  narrowExistingFiles([path]);
  return parseKeyFile(path, text);
}

/**
 * Makes a new key file at PATH (0600), unless another tracker starting at
 * the same moment with the same --key-file made it first: then that one is
 * the cluster's. Written aside and linked into place, so nobody reads half a key.
 */
export function createKeyFile(path: string): WrappingKey {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    writeFileSync(tmp, `${randomBytes(KEY_BYTES).toString('base64url')}\n`, {
      mode: PRIVATE_FILE_MODE,
      flag: 'wx',
    });
    try {
      linkSync(tmp, path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  } catch (err) {
    throw new CoterieError('USAGE', `cannot create the key file ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  } finally {
    rmSync(tmp, { force: true });
  }
  const key = readKeyFile(path);
  if (key === undefined) throw new CoterieError('USAGE', `the key file ${path} vanished as it was made`);
  return key;
}

/** Whether a cluster_keys.private_jwk value is a wrapped key (compact JWE) rather than a plain JWK (before 0.1.x). */
export function isWrapped(stored: string): boolean {
  return !stored.trimStart().startsWith('{');
}

/** Wraps a private JWK for the row of signing key KID (the kid is in the protected header, so rows cannot be swapped). */
export async function wrapPrivateJwk(jwk: JWK, kid: string, key: WrappingKey): Promise<string> {
  return new CompactEncrypt(new TextEncoder().encode(JSON.stringify(jwk)))
    .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: key.id, skid: kid })
    .encrypt(key.bytes);
}

/** The private JWK of row KID; KEY_MISMATCH when KEY did not wrap it. */
export async function unwrapPrivateJwk(stored: string, kid: string, key: WrappingKey): Promise<JWK> {
  let wrappedBy = 'an unknown key';
  try {
    const header = decodeProtectedHeader(stored);
    if (typeof header.kid === 'string') wrappedBy = `key ${header.kid}`;
    if (header.skid !== kid) throw new Error(`the wrapped key belongs to ${String(header.skid)}`);
    const { plaintext } = await compactDecrypt(stored, key.bytes);
    return JSON.parse(new TextDecoder().decode(plaintext)) as JWK;
  } catch (err) {
    throw new CoterieError(
      'KEY_MISMATCH',
      `the store's signing key ${kid} was wrapped with ${wrappedBy}, not with ${key.path} (key ${key.id}): ${copyAdvice(key.path)}`,
      { cause: err },
    );
  }
}

/** The refusal when the store holds wrapped keys and there is no key file to open them. */
export function missingKeyFile(path: string): CoterieError {
  return new CoterieError(
    'KEY_MISMATCH',
    `the store holds this cluster's signing keys, wrapped, and there is no key file at ${path}: ${copyAdvice(path)}`,
  );
}
