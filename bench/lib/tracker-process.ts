import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  loadOrCreateTrackerCertificate,
  TRACKER_CERT_FILE,
  TRACKER_CERT_KEY_FILE,
} from '../../src/cli/tracker-tls.js';
import { BIN } from './bin.js';
import { pinTracker } from './tracker-pins.js';

export interface TrackerProcess {
  /**
   * `https://127.0.0.1:PORT` (or `http://` with --insecure-http): the origin,
   * what peers report as their tracker. Its certificate is pinned for
   * bench/lib's clients (tracker-pins.ts); a peer given this bare URL pins it
   * at first use.
   */
  url: string;
  /** The URL as printed, with `#sha256=…` when the certificate is self-signed: what a peer pins. */
  pinnedUrl: string;
  /** SHA-256 (hex) of its self-signed certificate; undefined with --insecure-http or a CA's certificate. */
  fingerprint: string | undefined;
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
  /**
   * Let the tracker make its own certificate, as a real first start does
   * (about 0.3 CPU-s, loading @peculiar/x509), instead of finding this
   * process's shared one in its data directory.
   */
  ownCertificate?: boolean;
  /**
   * `waiting`: return once it says it waits for its store's primary (every store host a standby)
   * and answers /readyz meanwhile, instead of at its listening line.
   */
  until?: 'listening' | 'waiting';
  /** Variables added to its environment (a test's fault injection). */
  env?: Record<string, string>;
}

let sharedCertificate: Promise<{ cert: string; key: string }> | undefined;

/**
 * Puts one certificate made once per process into a new tracker's data
 * directory, so that each start only reads it: a tracker start already costs
 * ~1.5 CPU-s, and the suite starts hundreds on a loaded machine.
 */
async function seedCertificate(dataDir: string): Promise<void> {
  const [certPath, keyPath] = [join(dataDir, TRACKER_CERT_FILE), join(dataDir, TRACKER_CERT_KEY_FILE)];
  if (existsSync(certPath) || existsSync(keyPath)) return;
  sharedCertificate ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'coterie-cert-'));
    try {
      return await loadOrCreateTrackerCertificate(dir, '127.0.0.1');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  })();
  const { cert, key } = await sharedCertificate;
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writeFileSync(keyPath, key, { mode: 0o600 });
  writeFileSync(certPath, cert, { mode: 0o600 });
}

/** Spawns `node bin/coterie.js tracker --port 0 --data-dir DIR …args` and waits for its listening line. */
export async function spawnTracker(
  dataDir: string,
  args: string[] = [],
  options: TrackerProcessOptions = {},
): Promise<TrackerProcess> {
  const servesTls = !args.includes('--insecure-http') && !args.includes('--tls-cert');
  if (servesTls && options.ownCertificate !== true) await seedCertificate(dataDir);
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
      // Suites and benchmarks make many accounts from 127.0.0.1; a test of the limit passes its own after.
      '--account-creations-per-address',
      '1000000000',
      ...args,
    ],
    {
      stdio: ['ignore', 'pipe', options.echoStderr ? 'inherit' : 'pipe'],
      ...(options.env === undefined ? {} : { env: { ...process.env, ...options.env } }),
    },
  );
  let out = '';
  proc.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  // Generous: an exit fails the start at once; only a live, silent tracker waits this long
  // (15 s was seen to pass under a load of 23 on 2 cores).
  const startMs = options.startMs ?? 30_000;
  const printed = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`tracker did not start in ${startMs} ms:\n${out}`));
    }, startMs);
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = (
        options.until === 'waiting'
          ? /answering \/readyz on (https?:\/\/\S+)/
          : /listening on (https?:\/\/\S+)/
      ).exec(out);
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
  const fingerprint = /#sha256=([0-9a-f]{64})$/.exec(printed)?.[1];
  const url = new URL(printed).origin;
  if (fingerprint !== undefined) pinTracker(url, fingerprint);
  return {
    url,
    pinnedUrl: printed,
    fingerprint,
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
