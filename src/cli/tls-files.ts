import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { CoterieError } from '../protocol/errors.js';

// An operator's TLS certificate and key (--tls-cert/--tls-key of `coterie tracker` and `coterie relay`).

function readPem(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new CoterieError('USAGE', `cannot read the TLS ${what} file ${path}: ${(err as Error).message}`);
  }
}

/** The certificate and key, checked now: a bad pair is a usage error, not OpenSSL's message at listen. */
export function readTls(certPath: string, keyPath: string): { cert: Buffer; key: Buffer } {
  const pair = { cert: readPem(certPath, 'certificate'), key: readPem(keyPath, 'key') };
  try {
    createSecureContext(pair);
  } catch (err) {
    throw new CoterieError(
      'USAGE',
      `--tls-cert ${certPath} and --tls-key ${keyPath} are no PEM certificate and matching key: ${(err as Error).message}`,
    );
  }
  return pair;
}
