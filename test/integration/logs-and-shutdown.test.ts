// The operator's side of the daemons (issue 21): peer.log reopened on SIGHUP (logrotate moved
// it), and a graceful shutdown with a time limit that a second signal cuts short, through real
// processes. A client stuck in the middle of a request keeps a tracker's HTTP server from
// closing (it waits for in-flight requests): that is the shutdown that would hang. A peer's web
// UI cuts such clients after a short grace, so its stop finishes whatever the browser does.

import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, renameSync, statSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliSwarm } from '../helpers/cli-swarm.js';
import { spawnTracker, type TrackerProcess, tempDir } from '../helpers/tracker.js';
import { until, within } from '../helpers/wait.js';

/** A POST whose body never ends: the request stays in flight. */
async function stuckRequest(url: string, path = '/v1/users'): Promise<net.Socket> {
  const { hostname, port, host } = new URL(url);
  const socket = net.connect(Number(port), hostname);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.on('error', () => {});
  socket.write(
    `POST ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"userId":`,
  );
  return socket;
}

/** A raw socket to the UI on 127.0.0.1:port, connected. */
async function uiSocket(port: number): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.on('error', () => {});
  return socket;
}

/** The page's event WebSocket (opened with the control token) whose client reads nothing and never answers a close. */
async function silentEventSocket(port: number, token: string): Promise<net.Socket> {
  const socket = await uiSocket(port);
  socket.write(
    `GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${token}\r\n` +
      'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
  );
  let seen = '';
  await new Promise<void>((resolve) => {
    const onData = (chunk: Buffer) => {
      seen += chunk.toString('latin1');
      if (seen.includes('\r\n\r\n')) {
        socket.off('data', onData);
        resolve();
      }
    };
    socket.on('data', onData);
  });
  expect(seen.split('\r\n')[0]).toContain('101');
  return socket;
}

/** A request answered, then the connection left open and idle (HTTP/1.1 keep-alive). */
async function idleKeepAlive(port: number): Promise<net.Socket> {
  const socket = await uiSocket(port);
  socket.write(`GET /api/nothing HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
  await new Promise<void>((resolve) => socket.once('data', () => resolve()));
  return socket;
}

/** Resolves with the exit code and how long after this call the process exited. */
function exitAfter(t: { proc: ChildProcess }): Promise<{ code: number | null; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    t.proc.once('exit', (code) => resolve({ code, ms: Date.now() - started }));
  });
}

/** A tracker with `--shutdown-timeout seconds` and a request stuck in it, for `body`; removed after. */
async function withStuckTracker(seconds: number, body: (t: TrackerProcess) => Promise<void>): Promise<void> {
  const dir = tempDir();
  try {
    const t = await spawnTracker(dir.path, ['--insecure-http', '--shutdown-timeout', String(seconds)]);
    const socket = await stuckRequest(t.url);
    try {
      await new Promise((r) => setTimeout(r, 200));
      await body(t);
    } finally {
      socket.destroy();
    }
  } finally {
    dir.remove();
  }
}

describe('shutdown with a time limit', () => {
  it('a tracker whose shutdown hangs on a stuck request exits at --shutdown-timeout', async () => {
    await withStuckTracker(2, async (t) => {
      const exited = exitAfter(t);
      t.proc.kill('SIGTERM');
      const { code, ms } = await exited;
      expect(code).toBe(1);
      // Not before the limit (the stuck request held it), and not much after.
      expect(ms).toBeGreaterThanOrEqual(1900);
      expect(ms).toBeLessThan(10_000);
      expect(t.output()).toContain('the shutdown took longer than 2 s (--shutdown-timeout)');
    });
  }, 60_000);

  it('a second signal during a hanging shutdown exits at once', async () => {
    await withStuckTracker(120, async (t) => {
      const exited = exitAfter(t);
      t.proc.kill('SIGTERM');
      // Still shutting down a second later: the stuck request holds it.
      await new Promise((r) => setTimeout(r, 1000));
      expect(t.proc.exitCode).toBeNull();
      const secondAt = Date.now();
      t.proc.kill('SIGINT');
      const { code } = await exited;
      expect(code).toBe(1);
      expect(Date.now() - secondAt).toBeLessThan(5_000);
      expect(t.output()).toContain('SIGINT during the shutdown (after SIGTERM)');
    });
  }, 60_000);

  it('a peer stops on its own, however its web UI clients hold their connections: a stuck upload, a page socket that never answers the close, an idle keep-alive', async () => {
    const swarm = cliSwarm<'alice'>('coterie-peer-stop-');
    await swarm.startTracker();
    // A limit no test waits for: the stop must finish by itself, not by the guard.
    const peer = await swarm.startPeer('alice', ['--shutdown-timeout', '3600']);
    const daemonFile = join(swarm.dir('alice'), 'daemon.json');
    const info = JSON.parse(readFileSync(daemonFile, 'utf8')) as { ui: { port: number }; token: string };
    const ui = `http://127.0.0.1:${info.ui.port}`;
    const held = [
      await stuckRequest(ui, '/auth/ticket'),
      await silentEventSocket(info.ui.port, info.token),
      await idleKeepAlive(info.ui.port),
    ];
    try {
      const exited = exitAfter({ proc: peer.child });
      peer.child.kill('SIGTERM');
      const { code } = await within('the peer stopping', 20_000, exited);
      expect(code).toBe(0);
      // A finished stop, not the guard's exit: the daemon file is gone and nothing was forced.
      expect(existsSync(daemonFile)).toBe(false);
      expect(readFileSync(join(swarm.dir('alice'), 'peer.log'), 'utf8')).not.toContain(
        'exiting without finishing the shutdown',
      );
    } finally {
      for (const s of held) s.destroy();
    }
  }, 90_000);
});

describe('peer.log and SIGHUP', () => {
  it('reopens peer.log after logrotate renamed it: a new file with new lines, the old one unchanged', async () => {
    const swarm = cliSwarm<'alice'>('coterie-sighup-');
    await swarm.startTracker();
    const peer = await swarm.startPeer('alice');
    const log = join(swarm.dir('alice'), 'peer.log');
    await until('peer.log', () => existsSync(log) && readFileSync(log, 'utf8').length > 0);
    renameSync(log, `${log}.1`);
    const moved = readFileSync(`${log}.1`, 'utf8');
    peer.child.kill('SIGHUP');
    await until('a new peer.log', () => existsSync(log) && readFileSync(log, 'utf8').includes('reopened'));
    // Its next lines go there too, appended (a second SIGHUP reopens the same new file).
    peer.child.kill('SIGHUP');
    await until(
      'more lines in the new peer.log',
      () => readFileSync(log, 'utf8').trim().split('\n').length === 2,
    );
    expect(statSync(log).mode & 0o777).toBe(0o600);
    expect(readFileSync(`${log}.1`, 'utf8')).toBe(moved);
    // Still running after SIGHUP (its default action would have ended it).
    expect(peer.child.exitCode).toBeNull();
  }, 90_000);
});
