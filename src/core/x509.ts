/**
 * Loads @peculiar/x509. Its v2 build resolves its dependency injection
 * through tsyringe, which refuses to load unless the Reflect metadata API
 * exists: the `reflect-metadata` polyfill provides it, imported first.
 */
import { isIP } from 'node:net';

export type X509Module = typeof import('@peculiar/x509');

let loaded: Promise<X509Module> | undefined;

/** The @peculiar/x509 module, wired to node's webcrypto. */
export function loadX509(): Promise<X509Module> {
  loaded ??= (async () => {
    await import('reflect-metadata');
    const x509 = await import('@peculiar/x509');
    const { webcrypto } = await import('node:crypto');
    // node:crypto's webcrypto is the standard Crypto the library expects; lib has no DOM types here.
    x509.cryptoProvider.set(webcrypto as never);
    return x509;
  })();
  return loaded;
}

/**
 * A self-signed certificate (PEM) for `keys`: a random positive serial, valid
 * from a day ago (skewed clocks) for a hundred years, since its validity is
 * not what anyone trusts: its fingerprint is pinned.
 */
export async function createSelfSignedPem(options: {
  name: string;
  keys: import('node:crypto').webcrypto.CryptoKeyPair;
  signingAlgorithm: import('node:crypto').webcrypto.EcdsaParams | import('node:crypto').webcrypto.Algorithm;
  extensions?: import('@peculiar/x509').Extension[];
}): Promise<string> {
  const x509 = await loadX509();
  const { randomBytes } = await import('node:crypto');
  const serial = randomBytes(16);
  serial[0]! &= 0x7f; // a positive INTEGER
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial.toString('hex'),
    name: options.name,
    notBefore: new Date(Date.now() - 24 * 3600 * 1000),
    notAfter: new Date(Date.now() + 100 * 365 * 24 * 3600 * 1000),
    signingAlgorithm: options.signingAlgorithm,
    keys: options.keys,
    ...(options.extensions === undefined ? {} : { extensions: options.extensions }),
  });
  return cert.toString('pem');
}

/** The names a certificate made for `host` lists (none is checked by pinning clients; CA-style clients may). */
function subjectNames(host: string): { type: 'ip' | 'dns'; value: string }[] {
  const names = new Map<string, 'ip' | 'dns'>([
    ['127.0.0.1', 'ip'],
    ['::1', 'ip'],
    ['localhost', 'dns'],
  ]);
  if (host !== '0.0.0.0' && host !== '::') names.set(host, isIP(host) === 0 ? 'dns' : 'ip');
  return [...names].map(([value, type]) => ({ type, value }));
}

/**
 * A server's own certificate and key (PEM), ECDSA P-256, self-signed: a
 * tracker's or a relay's, trusted by its fingerprint. CA:true, so that a
 * client may also trust it as its own CA (--tracker-ca, curl --cacert).
 */
export async function createServerCertificate(
  commonName: string,
  host: string,
): Promise<{ cert: string; key: string }> {
  const x509 = await loadX509();
  const { webcrypto } = await import('node:crypto');
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const cert = await createSelfSignedPem({
    name: `CN=${commonName}`,
    keys,
    signingAlgorithm: alg,
    extensions: [
      new x509.SubjectAlternativeNameExtension(subjectNames(host)),
      new x509.BasicConstraintsExtension(true, undefined, true),
    ],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { cert, key: x509.PemConverter.encode(pkcs8, 'PRIVATE KEY') };
}
