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
