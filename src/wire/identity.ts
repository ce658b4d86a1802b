/**
 * A peer's identity on the wire: an Ed25519 key pair and a self-signed X.509
 * certificate. Its peer id is the SHA-256 (lowercase hex) of the
 * certificate's SubjectPublicKeyInfo DER, so it names the key, not the
 * certificate: re-issuing the certificate for the same key keeps the id.
 *
 * TLS 1.3 runs with `rejectUnauthorized: false` because no CA vouches for
 * anyone here; instead each side pins the other's fingerprint (the tracker
 * lists the seeder's peer id; the seeder's ticket names the downloader's).
 */
import { X509Certificate } from 'node:crypto';
import { chmod, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { peerIdOfCertificate } from '../core/peer-id.js';
import { createSelfSignedPem, loadX509 } from '../core/x509.js';
import { CoterieError } from '../protocol/errors.js';
import type { OnReadOption } from './placed-reads.js';

export interface PeerIdentity {
  /** Lowercase hex SHA-256 of the certificate's SubjectPublicKeyInfo DER. */
  readonly peerId: string;
  readonly certPem: string;
  readonly keyPem: string;
}

export const IDENTITY_CERT_FILE = 'peer-cert.pem';
export const IDENTITY_KEY_FILE = 'peer-key.pem';

/**
 * TLS 1.3 suites, AES-128-GCM first: with AES-NI it is the fastest of the
 * three and 128-bit keys are ample; the server's order wins (honorCipherOrder).
 */
export const TLS_CIPHERS = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256';

export { peerIdOfCertificate };

/** Makes a fresh identity (not persisted). */
export async function createIdentity(): Promise<PeerIdentity> {
  const x509 = await loadX509();
  const { webcrypto } = await import('node:crypto');
  const algorithm = { name: 'Ed25519' };
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify'])) as {
    privateKey: Parameters<typeof webcrypto.subtle.exportKey>[1];
    publicKey: Parameters<typeof webcrypto.subtle.exportKey>[1];
  };
  const certPem = await createSelfSignedPem({
    name: 'CN=coterie peer',
    signingAlgorithm: algorithm,
    keys: keys as never,
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  const keyPem = x509.PemConverter.encode(pkcs8, 'PRIVATE KEY');
  return { peerId: peerIdOfCertificate(certPem), certPem, keyPem };
}

/**
 * Loads the identity kept in `dir` (peer-cert.pem, peer-key.pem), or makes
 * and saves one if neither file exists. Both files are mode 0600 (the
 * certificate is no secret, but nothing in a data directory is anyone
 * else's to read) and the directory 0700. Half an identity, or a key that does not match its
 * certificate, is an error rather than a silent new peer id.
 */
export async function loadOrCreateIdentity(dir: string): Promise<PeerIdentity & { created: boolean }> {
  const certPath = join(dir, IDENTITY_CERT_FILE);
  const keyPath = join(dir, IDENTITY_KEY_FILE);
  const [certPem, keyPem] = await Promise.all([readIfExists(certPath), readIfExists(keyPath)]);
  if (certPem === null && keyPem === null) {
    const identity = await createIdentity();
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // The key first, so a crash in between leaves "key without cert", which is refused, not replaced.
    await writeAtomic(keyPath, identity.keyPem, 0o600);
    await writeAtomic(certPath, identity.certPem, 0o600);
    return { ...identity, created: true };
  }
  if (certPem === null || keyPem === null) {
    throw new CoterieError(
      'PATH_INVALID',
      `incomplete peer identity in ${dir}: restore ${certPem === null ? IDENTITY_CERT_FILE : IDENTITY_KEY_FILE} or remove both files to make a new identity`,
    );
  }
  let peerId: string;
  try {
    peerId = peerIdOfCertificate(certPem);
    const cert = new X509Certificate(certPem);
    const { createPrivateKey } = await import('node:crypto');
    if (!cert.checkPrivateKey(createPrivateKey(keyPem))) throw new Error('key does not match certificate');
  } catch (err) {
    throw new CoterieError('PATH_INVALID', `unreadable peer identity in ${dir}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  for (const path of [keyPath, certPath]) {
    if (((await stat(path)).mode & 0o077) !== 0) await chmod(path, 0o600);
  }
  return { peerId, certPem, keyPem, created: false };
}

async function readIfExists(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

async function writeAtomic(path: string, data: string, mode: number): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, data, { mode, flag: 'wx' });
  await rename(tmp, path);
}

/** TLS options for a peer's server: TLS 1.3 only, asks for the client's certificate. */
export function tlsServerOptions(identity: PeerIdentity): tls.TlsOptions {
  return {
    cert: identity.certPem,
    key: identity.keyPem,
    minVersion: 'TLSv1.3',
    ciphers: TLS_CIPHERS,
    honorCipherOrder: true,
    requestCert: true,
    // No CA signs peer certificates: the caller pins the fingerprint instead (peerIdOfSocket).
    rejectUnauthorized: false,
  };
}

/**
 * One client context per identity: building one parses the key and
 * certificate PEMs (milliseconds of CPU), which a storage peer dialling a
 * holder for each of hundreds of replicas paid on every dial.
 */
const clientContexts = new WeakMap<PeerIdentity, tls.SecureContext>();

/** TLS options for connecting to a peer; check the server's id with checkPeerId after connecting. */
export function tlsClientOptions(identity: PeerIdentity): tls.ConnectionOptions {
  let secureContext = clientContexts.get(identity);
  if (secureContext === undefined) {
    secureContext = tls.createSecureContext({
      cert: identity.certPem,
      key: identity.keyPem,
      minVersion: 'TLSv1.3',
      ciphers: TLS_CIPHERS,
    });
    clientContexts.set(identity, secureContext);
  }
  return { secureContext, minVersion: 'TLSv1.3', rejectUnauthorized: false };
}

/**
 * Peer ids by certificate fingerprint (SHA-256 of the whole DER, computed
 * natively): exporting the key to name it cost about a millisecond per
 * connection, and the same few peers connect again and again.
 */
const idsByFingerprint = new Map<string, string>();
const ID_CACHE_MAX = 4096;

function peerIdOfCertificateCached(cert: X509Certificate): string {
  const known = idsByFingerprint.get(cert.fingerprint256);
  if (known !== undefined) return known;
  const peerId = peerIdOfCertificate(cert);
  if (idsByFingerprint.size >= ID_CACHE_MAX) idsByFingerprint.clear();
  idsByFingerprint.set(cert.fingerprint256, peerId);
  return peerId;
}

/** Peer ids already read from sockets: see peerIdOfSocket. */
const socketPeerIds = new WeakMap<tls.TLSSocket, string>();

/**
 * The peer id of the other end of a TLS socket; PEER_MISMATCH when it showed
 * no certificate. Call it first in the 'secureConnect' / 'secureConnection'
 * handler: Node stops exposing the peer certificate once TLS 1.3 session
 * tickets have been processed, so the id is remembered from that first call.
 */
export function peerIdOfSocket(socket: tls.TLSSocket): string {
  const known = socketPeerIds.get(socket);
  if (known !== undefined) return known;
  const cert = socket.getPeerX509Certificate();
  if (cert === undefined) throw new CoterieError('PEER_MISMATCH', 'the peer presented no certificate');
  const peerId = peerIdOfCertificateCached(cert);
  socketPeerIds.set(socket, peerId);
  return peerId;
}

/** Throws PEER_MISMATCH unless the socket's peer is `expectedPeerId`; returns the id. */
export function checkPeerId(socket: tls.TLSSocket, expectedPeerId: string): string {
  const actual = peerIdOfSocket(socket);
  if (actual !== expectedPeerId) {
    throw new CoterieError(
      'PEER_MISMATCH',
      `peer at ${socket.remoteAddress}:${socket.remotePort} is ${actual.slice(0, 12)}…, not the expected ${expectedPeerId.slice(0, 12)}…`,
      { details: { expected: expectedPeerId, actual } },
    );
  }
  return actual;
}

export interface ConnectPeerOptions {
  host: string;
  port: number;
  identity: PeerIdentity;
  /** The peer id the tracker listed: the connection is refused unless the server proves it. */
  expectedPeerId: string;
  /**
   * No TLS: bytes in the clear and no proof of who answers. Only for
   * measuring the cost of TLS; never the default.
   */
  plaintext?: boolean;
  /** Give up connecting after this long (UNAVAILABLE). */
  timeoutMs?: number;
  /** Received bytes go where this says (see placed-reads.ts) instead of 'data' events. */
  onread?: OnReadOption;
}

export interface PeerSocket {
  socket: Duplex;
  /** The verified peer id (in plaintext mode, merely the expected one). */
  peerId: string;
}

/**
 * Connects to a peer over TLS 1.3 and pins its fingerprint. Rejects with
 * PEER_MISMATCH (the socket destroyed) if another key answers, UNAVAILABLE if
 * it cannot connect in time.
 */
export function connectToPeer(options: ConnectPeerOptions): Promise<PeerSocket> {
  const { host, port, identity, expectedPeerId, plaintext = false, timeoutMs = 10_000, onread } = options;
  return new Promise((resolve, reject) => {
    const reads = onread === undefined ? {} : { onread };
    const socket: net.Socket = plaintext
      ? net.connect({ host, port, ...reads })
      : tls.connect({ host, port, ...reads, ...tlsClientOptions(identity) });
    socket.setNoDelay(true);
    const timer = setTimeout(() => {
      fail(new CoterieError('UNAVAILABLE', `peer ${host}:${port} did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    timer.unref();
    const fail = (err: CoterieError) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    const onError = (err: Error) =>
      fail(
        new CoterieError('UNAVAILABLE', `cannot reach peer ${host}:${port}: ${err.message}`, { cause: err }),
      );
    socket.once('error', onError);
    socket.once(plaintext ? 'connect' : 'secureConnect', () => {
      clearTimeout(timer);
      // From here the caller owns the socket and its errors (FramedConnection listens).
      socket.off('error', onError);
      try {
        const peerId = plaintext ? expectedPeerId : checkPeerId(socket as tls.TLSSocket, expectedPeerId);
        resolve({ socket, peerId });
      } catch (err) {
        socket.destroy();
        reject(err);
      }
    });
  });
}
