/**
 * A tracker's own TLS certificate, for `coterie tracker` without --tls-cert:
 * made at its first start (ECDSA P-256, self-signed) and kept in its data
 * directory beside tracker.key, the key 0600, so a restart keeps the
 * fingerprint peers pinned. Validity is long on purpose: no CA vouches for
 * it, peers trust the fingerprint (protocol/tracker-url.ts), and an expiry
 * would only change it under them.
 */
import { webcrypto } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import { PRIVATE_FILE_MODE } from '../os/private-files.js';
import { CoterieError } from '../protocol/errors.js';
import { createSelfSignedPem, loadX509 } from '../wire/index.js';

export const TRACKER_CERT_FILE = 'tls-cert.pem';
export const TRACKER_CERT_KEY_FILE = 'tls-key.pem';

export interface TrackerCertificate {
  cert: string;
  key: string;
  /** Whether this start made it. */
  created: boolean;
}

/** The names a certificate made for `host` lists (none is checked by pinning peers; CA-style clients may). */
function subjectNames(host: string): { type: 'ip' | 'dns'; value: string }[] {
  const names = new Map<string, 'ip' | 'dns'>([
    ['127.0.0.1', 'ip'],
    ['::1', 'ip'],
    ['localhost', 'dns'],
  ]);
  if (host !== '0.0.0.0' && host !== '::') names.set(host, isIP(host) === 0 ? 'dns' : 'ip');
  return [...names].map(([value, type]) => ({ type, value }));
}

async function createCertificate(host: string): Promise<{ cert: string; key: string }> {
  const x509 = await loadX509();
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const cert = await createSelfSignedPem({
    name: 'CN=coterie tracker',
    keys,
    signingAlgorithm: alg,
    // CA:true, so that a client may also trust it as its own CA (--tracker-ca, curl --cacert).
    extensions: [
      new x509.SubjectAlternativeNameExtension(subjectNames(host)),
      new x509.BasicConstraintsExtension(true, undefined, true),
    ],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { cert, key: x509.PemConverter.encode(pkcs8, 'PRIVATE KEY') };
}

function writePrivate(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: PRIVATE_FILE_MODE, flag: 'wx' });
  renameSync(tmp, path);
}

/**
 * The certificate in DIR (tls-cert.pem, tls-key.pem), or a new one saved
 * there. Half a pair, or a key that does not match, is refused rather than
 * replaced: a new certificate is a new fingerprint every peer would refuse.
 */
export async function loadOrCreateTrackerCertificate(
  dataDir: string,
  host: string,
): Promise<TrackerCertificate> {
  const certPath = join(dataDir, TRACKER_CERT_FILE);
  const keyPath = join(dataDir, TRACKER_CERT_KEY_FILE);
  const [hasCert, hasKey] = [existsSync(certPath), existsSync(keyPath)];
  if (!hasCert && !hasKey) {
    const made = await createCertificate(host);
    // The key first: a crash in between leaves "key without certificate", refused, not replaced.
    writePrivate(keyPath, made.key);
    writePrivate(certPath, made.cert);
    return { ...made, created: true };
  }
  if (!hasCert || !hasKey) {
    throw new CoterieError(
      'PATH_INVALID',
      `incomplete tracker certificate in ${dataDir}: restore ${hasCert ? TRACKER_CERT_KEY_FILE : TRACKER_CERT_FILE}, or remove both files to make a new one (peers will refuse it with TRACKER_CERT_CHANGED until given its new URL)`,
    );
  }
  const pair = { cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8') };
  try {
    createSecureContext(pair);
  } catch (err) {
    throw new CoterieError(
      'PATH_INVALID',
      `unreadable tracker certificate in ${dataDir} (${TRACKER_CERT_FILE}, ${TRACKER_CERT_KEY_FILE}): ${(err as Error).message}`,
    );
  }
  return { ...pair, created: false };
}
