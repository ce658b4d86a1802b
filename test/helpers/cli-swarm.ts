// A tracker and named peer daemons as a user runs them: real `coterie` processes (the built
// code) in one scratch directory, each peer in its own data directory and each process logging
// to <root>/<name>.log; all stopped, and the directory removed, after the file's tests (or,
// made inside a test, when that test finishes).
import { join } from 'node:path';
import { afterAll, expect, onTestFinished } from 'vitest';
import { callDaemon } from '../../src/peer/control/client.js';
import { coterie, type Daemon, type RunResult, startProcess, stop } from './cli-harness.js';
import { tempDir } from './temp-dir.js';

export interface CliSwarm<N extends string> {
  readonly root: string;
  /** A peer's data directory (or any other name's directory under the root). */
  dir(n: string): string;
  /** The running processes: the peers by name, and 'tracker'. */
  readonly procs: Map<N | 'tracker', Daemon>;
  /** The tracker's URL, once started. */
  readonly trackerUrl: string;
  /**
   * Starts (or restarts: pass the port it had) `coterie tracker` with cheap password hashing
   * and warnings only, plus `args`; its URL.
   */
  startTracker(args?: string[], port?: number): Promise<string>;
  /** Peers started from now on use `url`, a tracker this swarm did not start (a cluster's). */
  useTracker(url: string): void;
  /** Starts `coterie peer --no-shell` for `n` on the tracker, plus `args`. */
  startPeer(n: N, args?: string[]): Promise<Daemon>;
  /** Runs `coterie --data-dir <n's dir> …args`. */
  as(n: N, ...args: string[]): Promise<RunResult>;
  /** `as`, expecting it to succeed (the message names the command and says its stderr). */
  ok(n: N, ...args: string[]): Promise<RunResult>;
  /** `ok` with `input` on its stdin (a password read from '-'). */
  typed(n: N, input: string, ...args: string[]): Promise<RunResult>;
  /** What show_downloads says, straight from the control API (no process per poll). */
  downloads<Row>(n: N): Promise<Row[]>;
  /** Stops the peers, then the tracker (again is harmless: the cleanup calls it too). */
  stopAll(): Promise<void>;
}

export interface CliSwarmOptions {
  /** Every process runs under this umask (e.g. '022'), through sh. */
  umask?: string;
}

/**
 * Call it in a describe (it registers the afterAll that stops what it started and removes the
 * directory) or inside a test (the same when the test finishes).
 */
export function cliSwarm<N extends string>(prefix: string, options: CliSwarmOptions = {}): CliSwarm<N> {
  const scratch = tempDir(prefix);
  const root = scratch.path;
  const dir = (n: string) => join(root, n);
  const procs = new Map<N | 'tracker', Daemon>();
  const launch = { ...(options.umask === undefined ? {} : { umask: options.umask }) };
  let trackerUrl = '';

  const stopAll = async () => {
    // Peers first, so that none logs a lost tracker on its way out.
    for (const [n, p] of procs) if (n !== 'tracker') await stop(p.child);
    const tracker = procs.get('tracker');
    if (tracker !== undefined) await stop(tracker.child);
  };
  const cleanup = async () => {
    await stopAll();
    scratch.remove();
  };
  try {
    onTestFinished(cleanup, 30_000);
  } catch {
    afterAll(cleanup, 30_000);
  }
  const ok = async (n: N, input: string | undefined, args: string[]) => {
    const r = await coterie(['--data-dir', dir(n), ...args], input === undefined ? {} : { input });
    expect(r.code, `${n} ${args.join(' ')}: ${r.err}`).toBe(0);
    return r;
  };

  return {
    root,
    dir,
    procs,
    stopAll,
    get trackerUrl() {
      return trackerUrl;
    },
    async startTracker(args = [], port = 0) {
      const tracker = await startProcess(
        [
          'tracker',
          '--port',
          String(port),
          '--data-dir',
          dir('tracker'),
          '--scrypt-log-n',
          '10',
          '--log-level',
          'warn',
          // Every peer's account comes from 127.0.0.1 (the default allows 20 per 10 minutes).
          '--account-creations-per-address',
          '1000',
          ...args,
        ],
        /listening on/,
        join(root, 'tracker.log'),
        20_000,
        launch,
      );
      procs.set('tracker', tracker);
      trackerUrl = /listening on (\S+)/.exec(tracker.line)![1]!;
      return trackerUrl;
    },
    useTracker(url) {
      trackerUrl = url;
    },
    async startPeer(n, args = []) {
      const peer = await startProcess(
        ['peer', '--data-dir', dir(n), '--tracker', trackerUrl, '--no-shell', ...args],
        /^peer [0-9a-f]{64} serving on/,
        join(root, `${n}.log`),
        20_000,
        launch,
      );
      procs.set(n, peer);
      return peer;
    },
    as: (n, ...args) => coterie(['--data-dir', dir(n), ...args]),
    ok: (n, ...args) => ok(n, undefined, args),
    typed: (n, input, ...args) => ok(n, input, args),
    downloads: async <Row>(n: N) =>
      ((await callDaemon(dir(n), 'show_downloads', [])) as { downloads: Row[] }).downloads,
  };
}
