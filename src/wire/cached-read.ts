import { createRequire } from 'node:module';
import { MAX_BLOCK_BYTES } from './frames.js';

/**
 * A seeder's block reads, first from the page cache on the calling thread
 * (the addon's preadNoWait: preadv2 with RWF_NOWAIT, native/pread-nowait.c),
 * then, for what the cache does not hold, on libuv's thread pool as before.
 *
 * fs.read sends every block through the thread pool: a pool thread woken and
 * switched in and out, and the completion's eventfd write and epoll wake-up
 * on the main thread, around ten system calls and two context switches per
 * block. A file being served is mostly cached (it was just written, or others
 * asked for the same pieces), and copying a cached block costs the same on
 * either thread; a block the disk must supply still never blocks the event
 * loop. Without the addon (not built) every read goes to the pool.
 */

interface CachedReadBinding {
  /** Bytes read, -1: would wait for the disk (or failed), -2: RWF_NOWAIT unsupported here. */
  preadNoWait?(fd: number, view: Uint8Array, position: number): number;
}

const BINDING_PATH = '../../build/Release/coterie_native.node';

function loadPreadNoWait(): CachedReadBinding['preadNoWait'] {
  try {
    const binding = createRequire(import.meta.url)(BINDING_PATH) as CachedReadBinding;
    return binding.preadNoWait?.bind(binding);
  } catch {
    return undefined;
  }
}

let preadNoWait = loadPreadNoWait();

/** Whether reads try the page cache first (the addon is built and the kernel did not refuse it). */
export function cachedReadsAvailable(): boolean {
  return preadNoWait !== undefined;
}

/**
 * The most one cached read copies on the calling thread: a block (MAX_BLOCK_BYTES). A whole
 * piece (a share guard's re-hash, pieces up to 16 MiB) would hold the event loop for
 * milliseconds; it goes to the pool.
 */
export const MAX_CACHED_READ_BYTES = MAX_BLOCK_BYTES;

/**
 * Reads into `view` at `position` what the page cache holds of it without
 * waiting for the disk: the bytes read, from 0 (none cached, the end of the
 * file, an error, a view over MAX_CACHED_READ_BYTES: the caller's pool read
 * then does it) to view.length.
 */
export function readCached(fd: number, view: Uint8Array, position: number): number {
  if (preadNoWait === undefined || view.length === 0 || view.length > MAX_CACHED_READ_BYTES) return 0;
  const n = preadNoWait(fd, view, position);
  if (n === -2) preadNoWait = undefined; // this kernel or file system cannot: stop asking
  return n > 0 ? n : 0;
}
