import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** bin/coterie.js of this installation (dist/cli/processes.js → ../../bin). */
export const COTERIE_BIN = fileURLToPath(new URL('../../bin/coterie.js', import.meta.url));

export interface Spawned {
  child: ChildProcess;
  /** The first stdout line matching the ready pattern. */
  line: string;
  /** Where its stdout and stderr go. */
  logFile: string;
}

/**
 * Starts `coterie ARGS…` as a child process and resolves with its ready line
 * (rejects if it exits first or stays silent for `timeoutMs`). Output goes to
 * `logFile` when given, so a detached child (demo --keep) needs no parent.
 */
export async function spawnCoterie(
  args: string[],
  ready: RegExp,
  options: { logFile: string; detached?: boolean; timeoutMs?: number; env?: NodeJS.ProcessEnv },
): Promise<Spawned> {
  // Output goes to the log file, not a pipe: a detached child (demo --keep) must outlive us.
  // 0600: a daemon's output may name users, groups and files.
  const out = openSync(options.logFile, 'a', 0o600);
  const startAt = statSync(options.logFile).size;
  const child = spawn(process.execPath, [COTERIE_BIN, ...args], {
    stdio: ['ignore', out, out],
    detached: options.detached ?? false,
    env: { ...process.env, ...options.env },
  });
  closeSync(out);
  let exited: number | null | undefined;
  child.once('exit', (code) => {
    exited = code;
  });
  // A child that is still alive is given a minute: on a loaded machine (a laptop building,
  // CI running two suites at once) a peer's start — TLS keys, the tracker's login, peer.db —
  // was seen to take more than 20 s, and an exit is caught at once whatever the deadline.
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  for (;;) {
    const text = readFileSync(options.logFile, 'utf8').slice(startAt);
    const line = text.split('\n').find((l) => ready.test(l));
    if (line !== undefined) return { child, line, logFile: options.logFile };
    if (exited !== undefined) {
      throw new Error(
        `coterie ${args[0]} exited with ${exited} before it was ready (see ${options.logFile})`,
      );
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`coterie ${args[0]} was not ready in time (see ${options.logFile})`);
    }
    await new Promise((r) => setTimeout(r, 40));
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
export function stopProcess(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/**
 * Those of `procs` that exited though nobody stopped them (not in `stopped`): each as its name,
 * how it ended and the last lines of its log (a crash's stack goes there).
 */
export function exitedUnasked(
  procs: Iterable<[name: string, Spawned]>,
  stopped: ReadonlySet<ChildProcess>,
): string[] {
  const out: string[] = [];
  for (const [name, p] of procs) {
    const { exitCode, signalCode } = p.child;
    if (stopped.has(p.child) || (exitCode === null && signalCode === null)) continue;
    let tail = '';
    try {
      tail = readFileSync(p.logFile, 'utf8')
        .trimEnd()
        .split('\n')
        .filter((l) => l.trim() !== '')
        .slice(-12)
        .map((l) => l.slice(0, 300))
        .join(' | ');
    } catch (err) {
      tail = (err as Error).message;
    }
    out.push(`${name} exited by itself (${signalCode ?? `code ${exitCode}`}); its log ends: ${tail}`);
  }
  return out;
}
