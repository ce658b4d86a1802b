import { createRequire } from 'node:module';

/**
 * The project's native addon (binding.gyp, native/), built from source by
 * `npm ci` with the machine's compiler. Optional: where it is not built
 * (`npm ci --ignore-scripts`, no compiler) its functions are undefined and
 * every caller has a slower path in JavaScript.
 */
interface NativeBinding {
  /** fallocate(2) on the thread pool: resolves with 0 or the errno (native/preallocate.c). */
  fallocate?(fd: number, offset: number, length: number): Promise<number>;
  /** SHA-256 of `data` on the thread pool, lowercase hex; `data` must not change meanwhile (native/sha256.c). */
  sha256?(data: Uint8Array): Promise<string>;
  /**
   * SHA-256 of two views in one pass on the thread pool (native/sha256-pair.c): half the CPU of
   * two sha256 calls. Exported only where the CPU has the SHA extensions.
   */
  sha256Pair?(a: Uint8Array, b: Uint8Array): Promise<[string, string]>;
}

const BINDING_PATH = '../../../../build/Release/coterie_native.node';

function loadBinding(): NativeBinding {
  try {
    return createRequire(import.meta.url)(BINDING_PATH) as NativeBinding;
  } catch {
    return {};
  }
}

// Each function on its own: a build from before one was added still has the others.
const binding = loadBinding();
export const nativeFallocate = binding.fallocate?.bind(binding);
export const nativeSha256 = binding.sha256?.bind(binding);
export const nativeSha256Pair = binding.sha256Pair?.bind(binding);
