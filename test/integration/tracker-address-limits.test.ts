// Per-address limits behind and without a reverse proxy (issue 21): account
// creation is limited per client address (each costs a scrypt), and
// --trust-proxy makes that address, and the failed-login limit's, the one in
// X-Forwarded-For; without the flag the header is ignored, so a client cannot
// pick the address it is counted by.
import { describe, expect, it } from 'vitest';
import { parseTrustProxy } from '../../src/cli/trust-proxy.js';
import { isCoterieError } from '../../src/protocol/errors.js';
import { request, spawnTracker, tempDir } from '../helpers/tracker.js';

const LIMIT = 3;
const LIMIT_ARGS = ['--account-creations-per-address', String(LIMIT)];

let n = 0;
const create = (base: string, forwardedFor?: string) =>
  request<{ error?: { code: string } }>(base, 'POST', '/v1/users', {
    body: { userId: `u${n++}`, password: 'correct horse battery' },
    ...(forwardedFor === undefined ? {} : { headers: { 'x-forwarded-for': forwardedFor } }),
  });

const badLogin = (base: string, forwardedFor: string) =>
  request<{ error?: { code: string } }>(base, 'POST', '/v1/login', {
    // A new user id each time: only the per-address count (20 a minute) can refuse.
    body: { userId: `nobody${n++}`, password: 'wrong password!' },
    headers: { 'x-forwarded-for': forwardedFor },
  });

describe('account creation per address, --trust-proxy', () => {
  it('refuses the creation past the limit with RATE_LIMITED and Retry-After; a spoofed X-Forwarded-For changes nothing without --trust-proxy', async () => {
    const dir = tempDir();
    try {
      const t = await spawnTracker(dir.path, LIMIT_ARGS);
      for (let i = 0; i < LIMIT; i++) {
        // Each claims another client address: ignored, all count against 127.0.0.1.
        expect((await create(t.url, `203.0.113.${i + 1}`)).status).toBe(201);
      }
      const refused = await create(t.url, '203.0.113.99');
      expect(refused.status).toBe(429);
      expect(refused.body.error?.code).toBe('RATE_LIMITED');
      const retryAfter = Number(refused.headers['retry-after']);
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(600);
      expect((await create(t.url)).status).toBe(429);

      // Failed logins: 20 per address a minute, whatever address the header claims.
      for (let i = 0; i < 20; i++) {
        expect((await badLogin(t.url, `198.51.100.${i + 1}`)).body.error?.code).toBe('BAD_CREDENTIALS');
      }
      expect((await badLogin(t.url, '198.51.100.200')).body.error?.code).toBe('RATE_LIMITED');
    } finally {
      dir.remove();
    }
  }, 60_000);

  it('with --trust-proxy, counts the address the trusted proxy names, not one the client prepended', async () => {
    const dir = tempDir();
    try {
      const t = await spawnTracker(dir.path, [...LIMIT_ARGS, '--trust-proxy', '127.0.0.1']);
      for (let i = 0; i < LIMIT; i++) expect((await create(t.url, '192.0.2.10')).status).toBe(201);
      expect((await create(t.url, '192.0.2.10')).body.error?.code).toBe('RATE_LIMITED');
      // The proxy appends the client it saw to what the client sent: the client's own entry is not trusted.
      expect((await create(t.url, '10.9.9.9, 192.0.2.10')).body.error?.code).toBe('RATE_LIMITED');
      // Another client behind the same proxy has its own count.
      expect((await create(t.url, '192.0.2.11')).status).toBe(201);

      for (let i = 0; i < 20; i++) {
        expect((await badLogin(t.url, '192.0.2.20')).body.error?.code).toBe('BAD_CREDENTIALS');
      }
      expect((await badLogin(t.url, '192.0.2.20')).body.error?.code).toBe('RATE_LIMITED');
      expect((await badLogin(t.url, '192.0.2.21')).body.error?.code).toBe('BAD_CREDENTIALS');
    } finally {
      dir.remove();
    }
  }, 60_000);

  it('--trust-proxy takes addresses, CIDRs, range names or a hop count, nothing else', () => {
    expect(parseTrustProxy('127.0.0.1')).toBe('127.0.0.1');
    expect(parseTrustProxy('10.0.0.0/8, ::1,loopback')).toBe('10.0.0.0/8,::1,loopback');
    expect(parseTrustProxy('2')).toBe(2);
    expect(parseTrustProxy(undefined)).toBeUndefined();
    for (const bad of ['true', '*', '0', '10.0.0.0/33', 'proxy.example', '1.2.3.4/8/1', '']) {
      let err: unknown;
      try {
        parseTrustProxy(bad);
      } catch (e) {
        err = e;
      }
      expect(isCoterieError(err) && err.code === 'USAGE').toBe(true);
    }
  });
});
