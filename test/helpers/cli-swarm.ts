// A tracker and named peer daemons as a user runs them: real `coterie` processes (the built
// code) in one scratch directory, each peer in its own data directory and each process logging
// to <root>/<name>.log; all stopped, and the directory removed, after the file's tests.
import { join } from 'node:path';
import { afterAll, expect } from 'vitest';
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
  /** Starts `coterie peer --no-shell` for `n` on the tracker, plus `args`. */
  startPeer(n: N, args?: string[]): Promise<Daemon>;
  /** Runs `coterie --data-dir <n's dir> …args`. */
  as(n: N, ...args: string[]): Promise<RunResult>;
  /** `as`, expecting it to succeed (the message names the command and says its stderr). */
  ok(n: N, ...args: string[]): Promise<RunResult>;
  /** What show_downloads says, straight from the control API (no process per poll). */
  downloads<Row>(n: N): Promise<Row[]>;
}

/** Call it in a describe: it registers the afterAll that stops what it started. */
export function cliSwarm<N extends string>(prefix: string): CliSwarm<N> {
  const scratch = tempDir(prefix);
  const root = scratch.path;
  const dir = (n: string) => join(root, n);
  const procs = new Map<N | 'tracker', Daemon>();
  let trackerUrl = '';

  afterAll(async () => {
    // Peers first, so that none logs a lost tracker on its way out.
    for (const [n, p] of procs) if (n !== 'tracker') await stop(p.child);
    const tracker = procs.get('tracker');
    if (tracker !== undefined) await stop(tracker.child);
    scratch.remove();
  }, 30_000);

  return {
    root,
    dir,
    procs,
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
          ...args,
        ],
        /listening on/,
        join(root, 'tracker.log'),
      );
      procs.set('tracker', tracker);
      trackerUrl = /listening on (\S+)/.exec(tracker.line)![1]!;
      return trackerUrl;
    },
    async startPeer(n, args = []) {
      const peer = await startProcess(
        ['peer', '--data-dir', dir(n), '--tracker', trackerUrl, '--no-shell', ...args],
        /^peer [0-9a-f]{64} serving on/,
        join(root, `${n}.log`),
      );
      procs.set(n, peer);
      return peer;
    },
    as: (n, ...args) => coterie(['--data-dir', dir(n), ...args]),
    ok: async (n, ...args) => {
      const r = await coterie(['--data-dir', dir(n), ...args]);
      expect(r.code, `${n} ${args.join(' ')}: ${r.err}`).toBe(0);
      return r;
    },
    downloads: async <Row>(n: N) =>
      ((await callDaemon(dir(n), 'show_downloads', [])) as { downloads: Row[] }).downloads,
  };
}
