// HTTP and manifest helpers shared by the tracker and cluster benchmarks
// (bench/run.ts skips files whose names start with '_').
import { createHash } from 'node:crypto';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

/** A JSON call to the tracker API; a 4xx/5xx answer throws with its body. */
export async function call<T>(
  url: string,
  method: string,
  path: string,
  token?: string,
  body?: unknown,
): Promise<T> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const json = (await res.json()) as T;
  if (res.status >= 400) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** A valid manifest of `size` bytes whose piece hashes derive from `seed` (never read from disk). */
export function manifestFor(seed: string, size: number) {
  const pieceSize = 65536;
  const n = Math.ceil(size / pieceSize);
  return { version: 1, size, pieceSize, pieces: Array.from({ length: n }, (_, i) => sha(`${seed}/${i}`)) };
}
