import { createCipheriv, randomBytes } from 'node:crypto';
import { mkdir, open } from 'node:fs/promises';
import { dirname } from 'node:path';

const CHUNK = 16 * 1024 * 1024;

/**
 * Writes `bytes` random-looking bytes to `path` (its directory made if needed):
 * AES-128-CTR over zeros with a fresh key, as fast as the disk for the
 * benchmarks' gigabytes, and never the same twice.
 */
export async function randomFile(path: string, bytes: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const cipher = createCipheriv('aes-128-ctr', randomBytes(16), randomBytes(16));
  const zeros = Buffer.alloc(Math.min(bytes, CHUNK));
  const fh = await open(path, 'w');
  try {
    for (let off = 0; off < bytes; off += zeros.length) {
      const n = Math.min(zeros.length, bytes - off);
      await fh.write(cipher.update(zeros.subarray(0, n)), 0, n, off);
    }
  } finally {
    await fh.close();
  }
}
