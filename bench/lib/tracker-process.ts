import { type ChildProcess, spawn } from 'node:child_process';
import { BIN } from './bin.js';

export interface TrackerProcess {
  url: string;
  port: number;
  dataDir: string;
  proc: ChildProcess;
  /** What it printed so far (its stderr too, unless echoed). */
  output: () => string;
  /** Sends `signal` (SIGTERM by default) and waits for the exit (SIGKILL after 10 s); the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface TrackerProcessOptions {
  /** The port to listen on (default 0: any free one; a restart passes the one it had). */
  port?: number;
  /** Write its stderr to ours instead of keeping it in output() (benchmarks). */
  echoStderr?: boolean;
  /** How long it may take to print its listening line. */
  startMs?: number;
}

/** Spawns `node bin/coterie.js tracker --port 0 --data-dir DIR …args` and waits for its listening line. */
export async function spawnTracker(
  dataDir: string,
  args: string[] = [],
  options: TrackerProcessOptions = {},
): Promise<TrackerProcess> {
  const proc = spawn(
    process.execPath,
    [
      // Dev aid: BENCH_TRACKER_NODE_ARGS='--cpu-prof --cpu-prof-dir=DIR' profiles the trackers.
      ...(process.env.BENCH_TRACKER_NODE_ARGS ?? '').split(' ').filter((a) => a !== ''),
      BIN,
      'tracker',
      '--port',
      String(options.port ?? 0),
      '--data-dir',
      dataDir,
      '--log-level',
      'warn',
      ...args,
    ],
    { stdio: ['ignore', 'pipe', options.echoStderr ? 'inherit' : 'pipe'] },
  );
  let out = '';
  proc.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const startMs = options.startMs ?? 15_000;
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`tracker did not start in ${startMs} ms:\n${out}`));
    }, startMs);
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (https?:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`tracker exited with ${code} before listening:\n${out}`));
    });
  });
  return {
    url,
    port: Number(new URL(url).port),
    dataDir,
    proc,
    output: () => out,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill(signal);
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
