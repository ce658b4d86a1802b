/**
 * Loads @peculiar/x509. Its v2 build resolves its dependency injection
 * through tsyringe, which refuses to load unless the Reflect metadata API
 * exists: the `reflect-metadata` polyfill provides it, imported first.
 */
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
