/**
 * Loads @peculiar/x509. Its v2 build resolves its dependency injection
 * through tsyringe, which refuses to load unless the `reflect-metadata`
 * polyfill API exists on `Reflect`; that polyfill is not a dependency of
 * ours. tsyringe only uses getMetadata, getOwnMetadata and defineMetadata
 * (for constructor parameter types, which the x509 classes do not need), so
 * a WeakMap-backed version of those three, installed only when absent, is
 * enough. Installing `reflect-metadata` and importing it here would replace
 * this shim.
 */
type MetadataTarget = object;
type MetadataMap = Map<unknown, unknown>;

interface ReflectMetadataApi {
  getMetadata?: (key: unknown, target: MetadataTarget) => unknown;
  getOwnMetadata?: (key: unknown, target: MetadataTarget) => unknown;
  defineMetadata?: (key: unknown, value: unknown, target: MetadataTarget) => void;
}

function installMetadataShim(): void {
  const api = Reflect as unknown as ReflectMetadataApi;
  if (typeof api.getMetadata === 'function') return;
  const store = new WeakMap<MetadataTarget, MetadataMap>();
  const own = (key: unknown, target: MetadataTarget) => store.get(target)?.get(key);
  api.getOwnMetadata = own;
  api.getMetadata = (key, target) => {
    for (
      let t: MetadataTarget | null = target;
      t !== null;
      t = Object.getPrototypeOf(t) as MetadataTarget | null
    ) {
      const v = own(key, t);
      if (v !== undefined) return v;
    }
    return undefined;
  };
  api.defineMetadata = (key, value, target) => {
    let m = store.get(target);
    if (m === undefined) {
      m = new Map();
      store.set(target, m);
    }
    m.set(key, value);
  };
}

export type X509Module = typeof import('@peculiar/x509');

let loaded: Promise<X509Module> | undefined;

/** The @peculiar/x509 module, wired to node's webcrypto. */
export function loadX509(): Promise<X509Module> {
  loaded ??= (async () => {
    installMetadataShim();
    const x509 = await import('@peculiar/x509');
    const { webcrypto } = await import('node:crypto');
    // node:crypto's webcrypto is the standard Crypto the library expects; lib has no DOM types here.
    x509.cryptoProvider.set(webcrypto as never);
    return x509;
  })();
  return loaded;
}
