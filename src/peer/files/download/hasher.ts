import { type HashPieceMessage, hashPiece, startHashWorker } from '../../../core/piece-hash.js';

/**
 * SHA-256 of pieces off the main thread. The main thread of a downloader
 * decrypts TLS, assembles frames and writes; hashing every byte there too
 * makes it the bottleneck, while a worker can hash on another core.
 *
 * Buffers backed by a SharedArrayBuffer go to a worker without a copy (the
 * download's pools allocate such buffers); any other buffer, or `workers: 0`,
 * is hashed on the calling thread.
 */
export interface PieceHasher {
  /** Lowercase hex SHA-256 of `data`. */
  hash(data: Buffer): Promise<string>;
  close(): Promise<void>;
}

export function createPieceHasher(options: { workers: number }): PieceHasher {
  const n = Math.max(0, Math.floor(options.workers));
  if (n === 0) {
    return {
      hash: (data) => Promise.resolve(hashPiece(data)),
      close: () => Promise.resolve(),
    };
  }
  const pending = new Map<number, { resolve: (d: string) => void; reject: (e: Error) => void }>();
  const load = new Array<number>(n).fill(0);
  let nextId = 0;
  const workers = Array.from({ length: n }, (_, i) => {
    const w = startHashWorker();
    // Idle workers must not keep a finished process alive.
    w.unref();
    w.on('message', ({ id, digest }: { id: number; digest: string }) => {
      load[i] = load[i]! - 1;
      if (load[i] === 0) w.unref();
      const p = pending.get(id);
      pending.delete(id);
      p?.resolve(digest);
    });
    w.on('error', (err) => {
      for (const p of pending.values()) p.reject(err);
      pending.clear();
    });
    return w;
  });
  let closed = false;
  return {
    hash(data) {
      const sab = data.buffer;
      if (closed || !(sab instanceof SharedArrayBuffer)) {
        return Promise.resolve(hashPiece(data));
      }
      // The least loaded worker: pieces finish in about the order they arrived.
      let best = 0;
      for (let i = 1; i < n; i++) if (load[i]! < load[best]!) best = i;
      load[best] = load[best]! + 1;
      // A hash under way keeps the process alive; an idle worker does not.
      workers[best]!.ref();
      const id = nextId++;
      return new Promise<string>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        workers[best]!.postMessage({
          id,
          sab,
          offset: data.byteOffset,
          length: data.length,
        } satisfies HashPieceMessage);
      });
    },
    async close() {
      closed = true;
      for (const p of pending.values()) p.reject(new Error('hasher closed'));
      pending.clear();
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}
