/**
 * A tracker's URL with the fingerprint of its self-signed certificate:
 * `https://HOST:PORT#sha256=<64 hex digits>`. The fragment never reaches the
 * network (HTTP clients drop it); a peer given such a URL connects to the
 * origin and accepts only a certificate whose SHA-256 (of its DER, as
 * `openssl x509 -fingerprint -sha256` prints it) is that one.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { CoterieError } from './errors.js';

export interface TrackerAddress {
  /** `http(s)://host:port`: what requests and the peer's tracker list use. */
  readonly origin: string;
  /** Lowercase hex SHA-256 of the certificate the tracker must present, when pinned. */
  readonly fingerprint?: string;
}

const FINGERPRINT_FRAGMENT = /^#sha256=([0-9A-Fa-f:]+)$/;

/** `ab:CD:…` or `abcd…` (64 hex digits) → lowercase hex; anything else is a USAGE error. */
export function parseFingerprint(value: string): string {
  const hex = value.replace(/:/g, '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new CoterieError(
      'USAGE',
      `invalid certificate fingerprint '${value}': 64 hex digits (SHA-256), colons allowed`,
    );
  }
  return hex;
}

/**
 * Parses a tracker URL as a user gives it (`host:port` means http, as it
 * always did). A fragment must be `#sha256=…` and only on https.
 */
export function parseTrackerAddress(text: string): TrackerAddress {
  let url: URL;
  try {
    url = new URL(text.includes('://') ? text : `http://${text}`);
  } catch {
    throw new CoterieError('USAGE', `invalid tracker URL '${text}': use https://HOST:PORT`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CoterieError('USAGE', `invalid tracker URL '${text}': use https:// or http://`);
  }
  if (url.hash === '') return { origin: url.origin };
  const m = FINGERPRINT_FRAGMENT.exec(url.hash);
  if (m === null || url.protocol !== 'https:') {
    throw new CoterieError(
      'USAGE',
      `invalid tracker URL '${text}': the only fragment is #sha256=<fingerprint>, on an https:// URL`,
    );
  }
  return { origin: url.origin, fingerprint: parseFingerprint(m[1]!) };
}

/** The URL a tracker prints and the cluster lists: the origin, with `#sha256=…` when pinned. */
export function formatTrackerAddress(address: TrackerAddress): string {
  return address.fingerprint === undefined
    ? address.origin
    : `${address.origin}#sha256=${address.fingerprint}`;
}

/** SHA-256 of a certificate's DER (raw bytes, or a PEM string), lowercase hex. */
export function certificateFingerprint(cert: Buffer | string): string {
  const der = typeof cert === 'string' ? new X509Certificate(cert).raw : cert;
  return createHash('sha256').update(der).digest('hex');
}

/**
 * The fingerprint to pin for a tracker's certificate (the first of a PEM
 * chain): only when it is self-signed. A certificate from a CA is checked
 * through that CA and pinning it would break its next renewal.
 */
export function selfSignedFingerprint(certPem: string | Buffer): string | undefined {
  const cert = new X509Certificate(certPem);
  if (!cert.checkIssued(cert) || !cert.verify(cert.publicKey)) return undefined;
  return certificateFingerprint(cert.raw);
}
