// HTTP and manifest helpers shared by the tracker and cluster benchmarks
// (bench/run.ts skips files whose names start with '_').
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../bin/coterie.js', import.meta.url));

export interface BenchTracker {
  url: string;
  port: number;
  proc: ChildProcess;
  dataDir: string;
}

/** Starts `coterie tracker` over `dataDir` (port 0: any) and waits for its listening line. */
export async function startTracker(dataDir: string, args: string[] = [], port = 0): Promise<BenchTracker> {
  const proc = spawn(
    process.execPath,
    [BIN, 'tracker', '--port', String(port), '--data-dir', dataDir, '--log-level', 'warn', ...args],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('tracker did not start')), 20_000);
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    proc.once('exit', (code) => reject(new Error(`tracker exited ${code}`)));
  });
  return { url, port: Number(new URL(url).port), proc, dataDir };
}

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
