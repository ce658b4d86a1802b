/**
 * A tracker's own TLS certificate, for `coterie tracker` without --tls-cert:
 * made at its first start (ECDSA P-256, self-signed) and kept in its data
 * directory beside tracker.key, the key 0600, so a restart keeps the
 * fingerprint peers pinned. Validity is long on purpose: no CA vouches for
 * it, peers trust the fingerprint (protocol/tracker-url.ts), and an expiry
 * would only change it under them.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import { createServerCertificate } from '../core/x509.js';
import { PRIVATE_FILE_MODE } from '../os/private-files.js';
import { CoterieError } from '../protocol/errors.js';

export const TRACKER_CERT_FILE = 'tls-cert.pem';
export const TRACKER_CERT_KEY_FILE = 'tls-key.pem';

export interface TrackerCertificate {
  cert: string;
  key: string;
  /** Whether this start made it. */
  created: boolean;
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
  commonName = 'coterie tracker',
): Promise<TrackerCertificate> {
  const certPath = join(dataDir, TRACKER_CERT_FILE);
  const keyPath = join(dataDir, TRACKER_CERT_KEY_FILE);
  const [hasCert, hasKey] = [existsSync(certPath), existsSync(keyPath)];
  if (!hasCert && !hasKey) {
    const made = await createServerCertificate(commonName, host);
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
