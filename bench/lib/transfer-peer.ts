import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** A peer reduced to file transfer (seed or download), from dist/: see its header for the spec. */
export const PEER_SCRIPT = fileURLToPath(new URL('./transfer-peer.mjs', import.meta.url));

export interface ChildPeer {
  child: ChildProcess;
  /** The first JSON line it printed (a seeder's {peerId, port}); rejects if it exits first. */
  first: Promise<Record<string, unknown>>;
  /** Every JSON line, as they come. */
  lines: Array<Record<string, unknown>>;
  onLine(fn: (line: Record<string, unknown>) => void): void;
  exited: Promise<number | null>;
  /** Sends `signal` (SIGKILL by default) unless it has exited, and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts transfer-peer.mjs in `mode` with `spec` (written to a file in `dir`); `nodeArgs` go to node. */
export async function startChildPeer(
  dir: string,
  mode: 'seed' | 'download',
  spec: object,
  nodeArgs: string[] = [],
): Promise<ChildPeer> {
  const specPath = join(dir, `spec-${randomBytes(4).toString('hex')}.json`);
  await writeFile(specPath, JSON.stringify(spec));
  const child = spawn(process.execPath, [...nodeArgs, PEER_SCRIPT, mode, specPath], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines: Array<Record<string, unknown>> = [];
  const listeners: Array<(l: Record<string, unknown>) => void> = [];
  let resolveFirst!: (l: Record<string, unknown>) => void;
  let rejectFirst!: (e: Error) => void;
  const first = new Promise<Record<string, unknown>>((resolve, reject) => {
    resolveFirst = resolve;
    rejectFirst = reject;
  });
  // A caller that never reads `first` (a downloader) must not see it reject unhandled.
  first.catch(() => {});
  createInterface({ input: child.stdout! }).on('line', (text) => {
    let line: Record<string, unknown>;
    try {
      line = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return;
    }
    lines.push(line);
    if (lines.length === 1) resolveFirst(line);
    for (const fn of listeners) fn(line);
  });
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      rejectFirst(new Error(`peer process exited (${code}) before printing anything`));
      resolve(code);
    });
  });
  return {
    child,
    first,
    lines,
    onLine: (fn) => listeners.push(fn),
    exited,
    async kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}
