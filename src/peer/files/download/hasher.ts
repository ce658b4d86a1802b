import type { Worker } from 'node:worker_threads';
import {
  type ForgetArenasMessage,
  type HashPieceMessage,
  hashPiece,
  startHashWorker,
} from '../../../core/piece-hash.js';
import { nativeSha256, nativeSha256Pair } from './native.js';
import { type ThreadPoolSha256, threadPoolHasher } from './thread-pool-hasher.js';

/**
 * SHA-256 of pieces off the main thread. The main thread of a downloader
 * decrypts TLS, assembles frames and writes; hashing every byte there too
 * makes it the bottleneck, while a worker can hash on another core.
 *
 * Buffers backed by a SharedArrayBuffer go to a worker without a copy (the
 * download's pools allocate such buffers); any other buffer, or `workers: 0`,
 * is hashed on the calling thread.
 *
 * The workers are the process's, shared by every download: starting one
 * boots a Node.js environment (tens of ms of CPU), which a storage peer
 * fetching hundreds of small replicas paid once per file and spent more on
 * than on hashing. They outlive the last download by IDLE_MS, then stop.
 */
export interface PieceHasher {
  /** Lowercase hex SHA-256 of `data`. */
  hash(data: Buffer): Promise<string>;
  close(): Promise<void>;
}

/** How long the shared workers outlive the last hasher (the next download reuses them). */
const IDLE_MS = 10_000;

interface PoolWorker {
  worker: Worker;
  /** Hashes posted and not yet answered. */
  load: number;
}

interface Pending {
  resolve: (digest: string) => void;
  reject: (err: Error) => void;
  owner: object;
  from: PoolWorker;
}

const pool: PoolWorker[] = [];
const pending = new Map<number, Pending>();
let nextId = 0;
let nextArena = 0;
let users = 0;
let idleTimer: NodeJS.Timeout | undefined;

function startPoolWorker(): PoolWorker {
  const pw: PoolWorker = { worker: startHashWorker(), load: 0 };
  // Idle workers must not keep a finished process alive.
  pw.worker.unref();
  pw.worker.on('message', ({ id, digest }: { id: number; digest: string }) => {
    pw.load--;
    if (pw.load === 0) pw.worker.unref();
    const p = pending.get(id);
    pending.delete(id);
    p?.resolve(digest);
  });
  pw.worker.on('error', (err) => {
    // A broken worker leaves the pool; its hashes fail (the engine retries the piece).
    const i = pool.indexOf(pw);
    if (i >= 0) pool.splice(i, 1);
    for (const [id, p] of pending) {
      if (p.from !== pw) continue;
      pending.delete(id);
      p.reject(err);
    }
  });
  return pw;
}

function stopIdleWorkers(): void {
  idleTimer = undefined;
  if (users > 0) return;
  for (const pw of pool.splice(0)) void pw.worker.terminate();
}

export function createPieceHasher(options: {
  workers: number;
  /**
   * Hash on the thread pool where the native addon is built (default true); false: worker
   * threads; functions: those instead of the addon's (tests count the calls).
   */
  native?: boolean | ThreadPoolSha256;
}): PieceHasher {
  const n = Math.max(0, Math.floor(options.workers));
  if (n === 0) {
    return {
      hash: (data) => Promise.resolve(hashPiece(data)),
      close: () => Promise.resolve(),
    };
  }
  if (typeof options.native === 'object') return threadPoolHasher(options.native, n);
  if (options.native !== false && nativeSha256 !== undefined) {
    return threadPoolHasher(
      nativeSha256Pair === undefined
        ? { sha256: nativeSha256 }
        : { sha256: nativeSha256, sha256Pair: nativeSha256Pair },
      n,
    );
  }
  users++;
  if (idleTimer !== undefined) clearTimeout(idleTimer);
  idleTimer = undefined;
  while (pool.length < n) pool.push(startPoolWorker());
  const owner = {};
  let closed = false;
  /** The shared memories this hasher sent each worker, by the number the worker keeps them under. */
  const sent = new Map<PoolWorker, Map<SharedArrayBuffer, number>>();
  return {
    hash(data) {
      const sab = data.buffer;
      if (closed || pool.length === 0 || !(sab instanceof SharedArrayBuffer)) {
        return Promise.resolve(hashPiece(data));
      }
      // The least loaded of the first n workers: pieces finish in about the order they arrived.
      let best = pool[0]!;
      for (const pw of pool.slice(1, n)) if (pw.load < best.load) best = pw;
      best.load++;
      // A hash under way keeps the process alive; an idle worker does not.
      best.worker.ref();
      const id = nextId++;
      const arenas = sent.get(best) ?? new Map<SharedArrayBuffer, number>();
      sent.set(best, arenas);
      let arena = arenas.get(sab);
      const message: HashPieceMessage = {
        id,
        arena: arena ?? nextArena,
        offset: data.byteOffset,
        length: data.length,
      };
      if (arena === undefined) {
        arena = nextArena++;
        arenas.set(sab, arena);
        message.sab = sab;
      }
      return new Promise<string>((resolve, reject) => {
        pending.set(id, { resolve, reject, owner, from: best });
        best.worker.postMessage(message);
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      // The workers let go of this download's memory (they would otherwise keep it alive).
      for (const [pw, arenas] of sent) {
        pw.worker.postMessage({ forget: [...arenas.values()] } satisfies ForgetArenasMessage);
      }
      sent.clear();
      // This download's hashes fail; the workers keep serving the others (and answer these into the void).
      for (const [id, p] of pending) {
        if (p.owner !== owner) continue;
        pending.delete(id);
        p.reject(new Error('hasher closed'));
      }
      users--;
      if (users === 0 && idleTimer === undefined) {
        idleTimer = setTimeout(stopIdleWorkers, IDLE_MS);
        idleTimer.unref();
      }
    },
  };
}

/** Workers in the shared pool now (tests: downloads share them rather than start their own). */
export function sharedHashWorkers(): number {
  return pool.length;
}
