// The listener a tracker answers on while its store has no primary at start
// (src/tracker/http/waiting.ts): /healthz lives, everything else (a session's
// upgrade too) gets 503 UNAVAILABLE with the reason and a retry hint, and once
// closed its port is free for the tracker's real listener.
import http from 'node:http';
import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { waitingListener } from '../../src/tracker/http/waiting.js';

function get(url: string, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; retryAfter: string | undefined; body: string }>((resolve, reject) => {
    const req = http.get(url, { headers, timeout: 5_000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => {
        body += d.toString();
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'], body }),
      );
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: no answer in 5 s`)));
    req.on('error', reject);
  });
}

describe('the waiting listener', () => {
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0)) await close();
  });

  it('answers /healthz, refuses the rest with the reason, and frees its port when closed', async () => {
    let announced: { url: string; reason: string } | undefined;
    const w = waitingListener({
      host: '127.0.0.1',
      port: 0,
      trackerId: 't-1',
      version: '0.0.0',
      announce: (url, reason) => {
        announced = { url, reason };
      },
    });
    closers.push(() => w.close());
    expect(w.port()).toBeUndefined();
    await w.open('no primary yet among db1:5432: a standby');
    const port = w.port()!;
    expect(announced).toEqual({
      url: `http://127.0.0.1:${port}`,
      reason: 'no primary yet among db1:5432: a standby',
    });
    const base = announced!.url;

    const health = await get(`${base}/healthz`);
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body)).toMatchObject({
      status: 'ok',
      trackerId: 't-1',
      store: { dialect: 'postgres' },
    });
    for (const path of ['/readyz', '/v1/groups']) {
      const r = await get(`${base}${path}`);
      expect(r.status, path).toBe(503);
      expect(r.retryAfter, path).toBe('1');
      expect(JSON.parse(r.body), path).toMatchObject({
        error: { code: 'UNAVAILABLE', details: { retryAfterSeconds: 1 } },
      });
      expect(r.body, path).toContain('db1:5432: a standby');
    }
    // A later reason replaces the first; the listener stays the same.
    await w.open('no primary yet among db1:5432: connection refused');
    expect(w.port()).toBe(port);
    const upgrade = await get(`${base}/v1/session`, { connection: 'Upgrade', upgrade: 'websocket' });
    expect(upgrade).toMatchObject({ status: 503, retryAfter: '1' });
    expect(upgrade.body).toContain('connection refused');

    await w.close();
    await w.close();
    expect(w.port()).toBe(port);
    // The tracker's real listener takes the same port at once.
    const next = createServer();
    await new Promise<void>((resolve, reject) => {
      next.once('error', reject);
      next.listen({ host: '127.0.0.1', port }, resolve);
    });
    await new Promise<void>((resolve) => next.close(() => resolve()));
  });
});
