import { describe, expect, it } from 'vitest';
import { startTracker } from '../../src/tracker/index.js';
import { client, tempDir } from '../helpers/tracker.js';

// startTracker() in process, with an injected clock: token expiry and the login rate limit window.
describe('startTracker in process', () => {
  it('expires tokens and reopens logins after the rate-limit window, on its clock', async () => {
    const dir = tempDir();
    let now = Date.now();
    const tracker = await startTracker({
      port: 0,
      dataDir: dir.path,
      logLevel: 'silent',
      scryptLogN: 10,
      sessionTtlSeconds: 3600,
      now: () => now,
    });
    try {
      expect(tracker.url).toBe(`http://127.0.0.1:${tracker.port}`);
      const api = client(tracker.url);
      const token = await api.user('clocky');
      expect((await api.call('GET', '/v1/whoami', { token })).status).toBe(200);
      now += 3601 * 1000;
      const expired = await api.call<{ error: { code: string } }>('GET', '/v1/whoami', { token });
      expect(expired.status).toBe(401);
      expect(expired.body.error.code).toBe('UNAUTHENTICATED');

      for (let i = 0; i < 5; i++) {
        await api.call('POST', '/v1/login', { body: { userId: 'clocky', password: 'wrong password' } });
      }
      const good = { userId: 'clocky', password: 'correct horse battery' };
      expect((await api.call('POST', '/v1/login', { body: good })).status).toBe(429);
      now += 61 * 1000;
      expect((await api.call('POST', '/v1/login', { body: good })).status).toBe(200);
    } finally {
      await tracker.close();
      await tracker.close(); // idempotent
      dir.remove();
    }
  });
});
