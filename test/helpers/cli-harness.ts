import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { BIN } from '../../bench/lib/bin.js';
import { until as waitUntil } from './wait.js';

/** The real `coterie` binary (dist/, built by `npm test`), run as a user would. */
export { BIN } from '../../bench/lib/bin.js';
export { randomFile } from '../../bench/lib/random-file.js';

export interface RunResult {
  code: number;
  out: string;
  err: string;
}

export function coterie(
  args: string[],
  options: { input?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<RunResult> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, ...options.env },
      stdio: 'pipe',
    });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.stdin.end(options.input ?? '');
    p.on('close', (code) => resolve({ code: code ?? -1, out, err }));
  });
}

export interface Daemon {
  child: ChildProcess;
  line: string;
  log: string;
}

/**
 * Starts a long-running `coterie …` and waits for the line matching `ready` in its output.
 * `umask` (e.g. '022') runs it under that umask, through sh (which execs it: same pid).
 */
export async function startProcess(
  args: string[],
  ready: RegExp,
  log: string,
  timeoutMs = 20_000,
  options: { umask?: string } = {},
): Promise<Daemon> {
  const fd = openSync(log, 'a');
  const command = [process.execPath, BIN, ...args];
  const child =
    options.umask === undefined
      ? spawn(command[0]!, command.slice(1), { stdio: ['ignore', fd, fd] })
      : spawn('sh', ['-c', `umask ${options.umask} && exec "$@"`, 'sh', ...command], {
          stdio: ['ignore', fd, fd],
        });
  closeSync(fd);
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  const end = Date.now() + timeoutMs;
  const from = readFileSync(log, 'utf8').length;
  for (;;) {
    const text = readFileSync(log, 'utf8').slice(from);
    const line = text.split('\n').find((l) => ready.test(l));
    if (line !== undefined) return { child, line, log };
    if (exited || Date.now() > end) {
      child.kill('SIGKILL');
      throw new Error(`${args.join(' ')} did not start:\n${text}`);
    }
    await new Promise((r) => setTimeout(r, 30));
  }
}

export function stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 8_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
    child.kill(signal);
  });
}

/** Resolves with the exit code once `child` has exited (at once if it already has); rejects after `ms`. */
export function exited(child: ChildProcess, ms = 10_000): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`process ${child.pid} did not exit in ${ms} ms`)), ms);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

/** `until` for checks that run a CLI process each time: polled every 100 ms, 15 s by default. */
export const until = (what: string, check: () => boolean | Promise<boolean>, ms = 15_000) =>
  waitUntil(what, check, ms, 100);
