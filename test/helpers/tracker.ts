// Tracker launchers for tests: a real `coterie tracker` process on port 0 (one
// per test, or one per file), on SQLite or on the cluster suites' PostgreSQL;
// plus a raw-socket HTTP probe. The HTTP client, session client and fake
// manifests they use live in bench/lib/ (the benchmarks share them) and are
// re-exported here.
import net from 'node:net';
import tls from 'node:tls';
import { afterAll, beforeAll, onTestFinished } from 'vitest';
import { client, type TrackerClient } from '../../bench/lib/http.js';
import {
  spawnTracker as spawnTrackerProcess,
  type TrackerProcess,
  type TrackerProcessOptions,
} from '../../bench/lib/tracker-process.js';
import { tempDir } from './temp-dir.js';

export {
  api,
  call,
  client,
  type Reply,
  type RequestOptions,
  request,
  type TrackerClient,
  userToken,
} from '../../bench/lib/http.js';
export { fakeManifest, randomPeerId, sha } from '../../bench/lib/manifests.js';
export { SessionClient } from '../../bench/lib/session-client.js';
export type { TrackerProcess, TrackerProcessOptions } from '../../bench/lib/tracker-process.js';
/** A session that says nothing by itself: every frame waits in next() (SessionClient.open). */
export { greet, openSession } from './session.js';
export { tempDir } from './temp-dir.js';

/** The tracker a test file shares, once its beforeAll ran. */
export interface FileTracker {
  readonly tracker: TrackerProcess;
  readonly api: TrackerClient;
  readonly dir: string;
}

/**
 * One tracker for a whole test file (each test uses its own users and
 * groups): spawned before the file's tests, stopped and its data directory
 * removed after them. Read the fields inside tests, not at import time.
 */
export function trackerPerFile(extraArgs: string[] = []): FileTracker {
  let state: { tracker: TrackerProcess; api: TrackerClient; dir: ReturnType<typeof tempDir> } | undefined;
  beforeAll(async () => {
    const dir = tempDir();
    const tracker = await spawnTracker(dir.path, extraArgs);
    state = { tracker, api: client(tracker.url), dir };
  });
  afterAll(async () => {
    await state?.tracker.stop();
    state?.dir.remove();
  });
  const started = () => {
    if (state === undefined) throw new Error('the file tracker starts in beforeAll: use it inside tests');
    return state;
  };
  return {
    get tracker() {
      return started().tracker;
    },
    get api() {
      return started().api;
    },
    get dir() {
      return started().dir.path;
    },
  };
}

/**
 * Which store spawnTracker gives a tracker: by default none (SQLite in its data
 * directory). The cluster suites (test/cluster/) set a function returning a
 * PostgreSQL URL per data directory, then run these same test files.
 */
let storeForDataDir: ((dataDir: string) => Promise<string>) | undefined;
export function useStoreForDataDir(fn: ((dataDir: string) => Promise<string>) | undefined): void {
  storeForDataDir = fn;
}

/**
 * Spawns `coterie tracker --port 0 --data-dir DIR …` (cheap password hashing,
 * the suite's store) and waits for its listening line. Inside a test it is
 * stopped when the test finishes, whatever the test did.
 */
export async function spawnTracker(
  dataDir: string,
  extraArgs: string[] = [],
  options: TrackerProcessOptions = {},
): Promise<TrackerProcess> {
  const store =
    storeForDataDir !== undefined && !extraArgs.includes('--store')
      ? await storeForDataDir(dataDir)
      : undefined;
  const tracker = await spawnTrackerProcess(
    dataDir,
    ['--scrypt-log-n', '10', ...(store === undefined ? [] : ['--store', store]), ...extraArgs],
    options,
  );
  try {
    onTestFinished(async () => {
      await tracker.stop('SIGKILL');
    });
  } catch {
    // Not inside a test: trackerPerFile's afterAll (or the caller) stops it.
  }
  return tracker;
}

/**
 * Sends request headers only (no body) over a raw socket and returns the
 * status: for checking that a declared oversize body is refused before it is read.
 */
export function headersOnly(base: string, head: string): Promise<{ status: number; text: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    // Over TLS for an https tracker: a probe of the HTTP layer, so which certificate does not matter.
    const sock =
      url.protocol === 'https:'
        ? tls.connect({ port: Number(url.port), host: url.hostname, rejectUnauthorized: false })
        : net.connect(Number(url.port), url.hostname);
    let text = '';
    sock.setTimeout(5000, () => sock.destroy(new Error('no answer')));
    sock.on(url.protocol === 'https:' ? 'secureConnect' : 'connect', () =>
      sock.write(`${head.replace(/\n/g, '\r\n')}\r\n\r\n`),
    );
    sock.on('data', (d: Buffer) => {
      text += d.toString();
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (m && text.includes('\r\n\r\n{') && text.trimEnd().endsWith('}')) {
        sock.destroy();
        resolve({ status: Number(m[1]), text });
      }
    });
    sock.on('error', reject);
    sock.on('close', () => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (m) resolve({ status: Number(m[1]), text });
      else reject(new Error(`connection closed without an answer: ${text}`));
    });
  });
}
