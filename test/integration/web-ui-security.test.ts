/**
 * The web UI's guards against a running daemon and tracker, with plain HTTP requests: each
 * forged request is refused with its status and code, and the group it tried to create does
 * not exist afterwards.
 */
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { callDaemon, readDaemonFile } from '../../src/peer/client.js';
import { type PeerDaemon, startPeerDaemon } from '../../src/peer/daemon.js';
import type { UiFrame } from '../../src/peer/ui/index.js';
import { UI_PATHS } from '../../src/protocol/ui.js';
import { coterie } from '../helpers/cli-harness.js';
import { tempDir, trackerPerFile } from '../helpers/tracker.js';
import { loginLink, type UiLogin, uiCommand, uiLogin } from '../helpers/web-ui.js';

const file = trackerPerFile();

/** A raw request: fetch would not send a Host of our choosing. */
function raw(
  port: number,
  path: string,
  headers: Record<string, string>,
  method = 'GET',
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method, headers }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('web UI: refusals', () => {
  const dir = tempDir('coterie-ui-sec-');
  let daemon: PeerDaemon;
  let login: UiLogin;
  let port: number;

  beforeAll(async () => {
    daemon = await startPeerDaemon({ dataDir: dir.path, trackers: [file.tracker.url] });
    port = daemon.ui!.port;
    await callDaemon(dir.path, 'create_user', ['uisec', 'password1']);
    await callDaemon(dir.path, 'login', ['uisec', 'password1']);
    login = await uiLogin(dir.path);
  }, 30_000);
  afterAll(async () => {
    await daemon?.stop();
    dir.remove();
  });

  const groupExists = async (groupId: string) =>
    (await callDaemon(dir.path, 'list_groups', [])).groups.some((g) => g.groupId === groupId);

  it('listens on 127.0.0.1 and records its port in daemon.json', () => {
    expect(daemon.ui?.host).toBe('127.0.0.1');
    expect(port).toBeGreaterThan(0);
  });

  it('runs a command from its own page (the control)', async () => {
    const r = await uiCommand(login, 'create_group', ['ui-ok']);
    expect(r).toMatchObject({ status: 200, body: { ok: true, result: { groupId: 'ui-ok' } } });
    expect(await groupExists('ui-ok')).toBe(true);
  });

  it('refuses a cross-site POST: foreign Origin, no Origin, cross-site fetch', async () => {
    for (const override of [
      { origin: 'http://evil.example' },
      { origin: undefined },
      { 'sec-fetch-site': 'cross-site' },
      { origin: 'null' },
    ]) {
      const r = await uiCommand(login, 'create_group', ['ui-xsite'], override);
      expect(r.status, JSON.stringify(override)).toBe(403);
      expect(r.body.error?.code).toBe('FORBIDDEN');
    }
    expect(await groupExists('ui-xsite')).toBe(false);
  });

  it('refuses a missing or stale CSRF token', async () => {
    const missing = await uiCommand(login, 'create_group', ['ui-csrf'], { 'x-coterie-csrf': undefined });
    expect([missing.status, missing.body.error?.code]).toEqual([403, 'FORBIDDEN']);
    const other = await uiLogin(dir.path); // another session's token is stale for this one
    const stale = await uiCommand(login, 'create_group', ['ui-csrf'], { 'x-coterie-csrf': other.csrf });
    expect([stale.status, stale.body.error?.code]).toEqual([403, 'FORBIDDEN']);
    expect(await groupExists('ui-csrf')).toBe(false);
  });

  it('refuses no cookie, and a cookie of an ended session', async () => {
    const none = await uiCommand(login, 'create_group', ['ui-nocookie'], { cookie: undefined });
    expect([none.status, none.body.error?.code]).toEqual([401, 'UNAUTHENTICATED']);
    const ended = await uiLogin(dir.path);
    const out = await fetch(`${ended.base}${UI_PATHS.logout}`, {
      method: 'POST',
      headers: { origin: ended.origin, cookie: ended.cookie, 'x-coterie-csrf': ended.csrf },
    });
    expect(out.status).toBe(200);
    const after = await uiCommand(ended, 'create_group', ['ui-nocookie']);
    expect(after.status).toBe(401);
    expect((await fetch(`${ended.base}${UI_PATHS.session}`)).status).toBe(401);
    expect(await groupExists('ui-nocookie')).toBe(false);
  });

  it('refuses a foreign Host (DNS rebinding) on every route, the page included', async () => {
    for (const path of ['/', UI_PATHS.session, '/app.js']) {
      const r = await raw(port, path, { host: `evil.example:${port}`, cookie: login.cookie });
      expect(r.status, path).toBe(403);
      expect(JSON.parse(r.body)).toMatchObject({ error: { code: 'FORBIDDEN' } });
    }
    const post = await raw(
      port,
      UI_PATHS.command,
      {
        host: 'evil.example',
        origin: 'http://evil.example',
        cookie: login.cookie,
        'x-coterie-csrf': login.csrf,
      },
      'POST',
    );
    expect(post.status).toBe(403);
    expect(await groupExists('ui-rebound')).toBe(false);
  });

  it('refuses a reused or unknown one-time token, and a ticket without the control token', async () => {
    const link = await loginLink(dir.path);
    expect((await fetch(link, { redirect: 'manual' })).status).toBe(303);
    const again = await fetch(link, { redirect: 'manual' });
    expect(again.status).toBe(401);
    expect(again.headers.get('set-cookie')).toBeNull();
    expect((await fetch(`${login.base}${UI_PATHS.login}?t=guess`, { redirect: 'manual' })).status).toBe(401);
    const ticket = await fetch(`${login.base}${UI_PATHS.ticket}`, {
      method: 'POST',
      headers: { authorization: 'Bearer wrong' },
    });
    expect(ticket.status).toBe(401);
  });

  it('sets the cookie HttpOnly SameSite=Strict, and the headers that keep it out of frames', async () => {
    const link = await loginLink(dir.path);
    const res = await fetch(link, { redirect: 'manual' });
    const cookie = res.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Strict/i);
    const page = await fetch(`${login.base}/`);
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|https?:/);
  });

  it('opens the event socket for its page or the control token with a snapshot, and refuses a foreign page, no cookie or a wrong token', async () => {
    const open = (headers: Record<string, string>) =>
      new Promise<{ status: number; first?: UiFrame }>((resolve, reject) => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}${UI_PATHS.events}?since=-1`, { headers });
        ws.on('unexpected-response', (_req, res) => {
          resolve({ status: res.statusCode ?? 0 });
          ws.terminate();
        });
        ws.on('message', (data) => {
          resolve({ status: 101, first: JSON.parse(String(data)) as UiFrame });
          ws.close();
        });
        ws.on('error', (err) => {
          if (!/closed before the connection/.test(err.message)) reject(err);
        });
      });
    const ours = await open({ origin: login.origin, cookie: login.cookie });
    expect(ours.status).toBe(101);
    expect(ours.first).toMatchObject({ kind: 'snapshot', status: { userId: 'uisec' } });
    expect((await open({ origin: 'http://evil.example', cookie: login.cookie })).status).toBe(403);
    expect((await open({ origin: login.origin })).status).toBe(401);
    // The CLI's --follow / --watch: the control token stands in for cookie and Origin; a wrong one does not.
    const token = readDaemonFile(dir.path)!.token;
    expect((await open({ authorization: `Bearer ${token}` })).first).toMatchObject({ kind: 'snapshot' });
    expect((await open({ authorization: `Bearer ${token.slice(1)}x` })).status).toBe(403); // then no Origin
    expect((await open({ origin: 'http://evil.example', authorization: 'Bearer guess' })).status).toBe(403);
  });

  it('coterie ui prints a one-time link that logs in once; without a daemon it says so', async () => {
    const noDesktop = { DISPLAY: '', WAYLAND_DISPLAY: '' };
    const r = await coterie(['--data-dir', dir.path, 'ui', '--no-open'], { env: noDesktop });
    expect(r.code, r.err).toBe(0);
    const link = r.out.split('\n')[0]!;
    expect(link).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${port}/login\\?t=[A-Za-z0-9_-]{43}$`));
    expect((await fetch(link, { redirect: 'manual' })).status).toBe(303);
    expect((await fetch(link, { redirect: 'manual' })).status).toBe(401);
    const empty = tempDir('coterie-ui-none-');
    const none = await coterie(['--data-dir', empty.path, 'ui'], { env: noDesktop });
    expect(none.code).toBe(1);
    expect(none.err).toContain('[DAEMON_NOT_RUNNING]');
    const usage = await coterie(['--data-dir', empty.path, 'ui', '--open-wide']);
    expect(usage.code).toBe(2);
  });

  it('runs no UI when turned off: daemon.json has none, and coterie ui and show_downloads --watch say so', async () => {
    const off = tempDir('coterie-ui-off-');
    const quiet = await startPeerDaemon({ dataDir: off.path, trackers: [file.tracker.url], ui: false });
    try {
      expect(quiet.ui).toBeUndefined();
      expect(readDaemonFile(off.path)?.ui).toBeUndefined();
      const r = await coterie(['--data-dir', off.path, 'ui', '--no-open']);
      expect(r.code).toBe(1);
      expect(r.err).toContain('[UNAVAILABLE]');
      // The CLI's live modes follow the UI's event stream: none here, and they say so.
      const watch = await coterie(['--data-dir', off.path, 'show_downloads', '--watch']);
      expect(watch.code).toBe(1);
      expect(watch.err).toContain('restart the peer without --no-ui [UNAVAILABLE]');
    } finally {
      await quiet.stop();
    }
  });

  // Last: it spends this address's login attempts for the minute.
  it('limits login attempts', async () => {
    let limited = false;
    for (let i = 0; i < 40 && !limited; i++) {
      const r = await fetch(`${login.base}${UI_PATHS.login}?t=guess${i}`, { redirect: 'manual' });
      limited = r.status === 429;
    }
    expect(limited).toBe(true);
  });
});
