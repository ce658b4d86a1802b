// Test harness for tracker integration tests: a real `coterie tracker`
// process on an ephemeral port, a tiny HTTP client and WebSocket helpers.
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll } from 'vitest';
import WebSocket from 'ws';
import type { Manifest } from '../../src/protocol/manifest.js';
import { choosePieceSize, computeFileId, pieceCount } from '../../src/protocol/manifest.js';
import type { TrackerMessage } from '../../src/protocol/session.js';

const BIN = fileURLToPath(new URL('../../bin/coterie.js', import.meta.url));

export interface TrackerProcess {
  url: string;
  port: number;
  dataDir: string;
  proc: ChildProcess;
  output: () => string;
  /** SIGTERM and wait for exit; returns the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function tempDir(prefix = 'coterie-tracker-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

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

/** Spawns `node bin/coterie.js tracker --port 0 --data-dir DIR …` and waits for its listening line. */
export async function spawnTracker(dataDir: string, extraArgs: string[] = []): Promise<TrackerProcess> {
  const store =
    storeForDataDir !== undefined && !extraArgs.includes('--store')
      ? await storeForDataDir(dataDir)
      : undefined;
  const proc = spawn(
    process.execPath,
    [
      BIN,
      'tracker',
      '--port',
      '0',
      '--data-dir',
      dataDir,
      '--log-level',
      'warn',
      '--scrypt-log-n',
      '10',
      ...(store === undefined ? [] : ['--store', store]),
      ...extraArgs,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  proc.stderr!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tracker did not start in time:\n${out}`)), 15_000);
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
      if (proc.exitCode !== null) return proc.exitCode;
      proc.kill(signal);
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

export interface Reply<T = Record<string, unknown>> {
  status: number;
  body: T;
  headers: http.IncomingHttpHeaders;
  text: string;
}

export interface RequestOptions {
  token?: string;
  body?: unknown;
  /** Sent as is instead of JSON-encoding `body`. */
  raw?: string | Buffer;
  headers?: Record<string, string>;
  ca?: string;
}

/** One HTTP(S) request; resolves with status and parsed JSON body (or text). */
export function request<T = Record<string, unknown>>(
  base: string,
  method: string,
  path: string,
  options: RequestOptions = {},
): Promise<Reply<T>> {
  const url = new URL(path, base);
  const payload =
    options.raw !== undefined
      ? options.raw
      : options.body === undefined
        ? undefined
        : JSON.stringify(options.body);
  const headers: Record<string, string> = { ...options.headers };
  if (payload !== undefined && headers['content-type'] === undefined)
    headers['content-type'] = 'application/json';
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  const lib = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(url, { method, headers, ca: options.ca, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // not JSON (e.g. /metrics)
        }
        resolve({ status: res.statusCode ?? 0, body: body as T, headers: res.headers, text });
      });
      res.on('error', reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`timeout on ${method} ${path}`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** A client bound to one tracker. */
export type TrackerClient = ReturnType<typeof client>;

export function client(base: string, ca?: string) {
  const call = <T = Record<string, unknown>>(method: string, path: string, options: RequestOptions = {}) =>
    request<T>(base, method, path, { ...(ca ? { ca } : {}), ...options });
  return {
    call,
    async user(userId: string, password = 'correct horse battery'): Promise<string> {
      const c = await call('POST', '/v1/users', { body: { userId, password } });
      if (c.status !== 201) throw new Error(`create user ${userId}: ${c.status} ${c.text}`);
      const l = await call<{ token: string }>('POST', '/v1/login', { body: { userId, password } });
      if (l.status !== 200) throw new Error(`login ${userId}: ${l.status} ${l.text}`);
      return l.body.token;
    },
  };
}

export const sha = (s: string) => createHash('sha256').update(s).digest('hex');
export const randomPeerId = () => randomBytes(32).toString('hex');

/** A valid manifest for `size` bytes whose piece hashes derive from `seed`. */
export function fakeManifest(seed: string, size = 300_000): { manifest: Manifest; fileId: string } {
  const pieceSize = choosePieceSize(size);
  const pieces = Array.from({ length: pieceCount(size, pieceSize) }, (_, i) => sha(`${seed}/${i}`));
  const manifest: Manifest = { version: 1, size, pieceSize, pieces };
  return { manifest, fileId: computeFileId(manifest) };
}

/** A WebSocket session with a queue of received messages. */
export interface SessionClient {
  ws: WebSocket;
  next(type?: TrackerMessage['type'] | TrackerMessage['type'][], timeoutMs?: number): Promise<TrackerMessage>;
  send(message: unknown): void;
  close(): Promise<void>;
  closed: Promise<{ code: number; reason: string }>;
}

export async function openSession(
  base: string,
  token: string | undefined,
  options: { ca?: string; autoPong?: boolean } = {},
): Promise<SessionClient> {
  const wsUrl = `${base.replace(/^http/, 'ws')}/v1/session`;
  const ws = new WebSocket(wsUrl, {
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    ...(options.ca ? { ca: options.ca } : {}),
    autoPong: options.autoPong ?? true,
  });
  const inbox: TrackerMessage[] = [];
  const waiters: (() => void)[] = [];
  ws.on('message', (data) => {
    inbox.push(JSON.parse(data.toString()) as TrackerMessage);
    for (const w of waiters.splice(0)) w();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once('close', (code, reason) => {
      resolve({ code, reason: reason.toString() });
      for (const w of waiters.splice(0)) w();
    }),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
  });
  return {
    ws,
    closed,
    send: (m) => ws.send(typeof m === 'string' ? m : JSON.stringify(m)),
    async next(type, timeoutMs = 5_000) {
      const types = type === undefined ? undefined : Array.isArray(type) ? type : [type];
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const i = inbox.findIndex((m) => types === undefined || types.includes(m.type));
        if (i >= 0) return inbox.splice(i, 1)[0]!;
        const left = deadline - Date.now();
        if (left <= 0 || ws.readyState === WebSocket.CLOSED) {
          throw new Error(
            `no ${types?.join('|') ?? 'message'} within ${timeoutMs} ms; got ${JSON.stringify(inbox)}`,
          );
        }
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, Math.min(left, 100));
          waiters.push(() => {
            clearTimeout(t);
            resolve();
          });
        });
      }
    },
    async close() {
      if (ws.readyState !== WebSocket.CLOSED) {
        ws.close();
        await Promise.race([closed, new Promise((r) => setTimeout(r, 2000))]);
        ws.terminate();
      }
    },
  };
}

/** Polls `check` until it returns a value that is not undefined, or fails after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`condition not met within ${timeoutMs} ms: ${String(last ?? '')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Sends request headers only (no body) over a raw socket and returns the
 * status: for checking that a declared oversize body is refused before it is read.
 */
export function headersOnly(base: string, head: string): Promise<{ status: number; text: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(url.port), url.hostname);
    let text = '';
    sock.setTimeout(5000, () => sock.destroy(new Error('no answer')));
    sock.on('connect', () => sock.write(`${head.replace(/\n/g, '\r\n')}\r\n\r\n`));
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
