import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { verifyTicket } from '../../src/protocol/tickets.js';
import { selfSignedTrackerCert } from '../fixtures/tls-cert.js';
import {
  client,
  fakeManifest,
  openSession,
  randomPeerId,
  spawnTracker,
  tempDir,
} from '../helpers/tracker.js';

describe('tracker lifecycle', () => {
  it('keeps users, groups, files and the ticket key across a restart; clears stale presence', async () => {
    const dir = tempDir();
    try {
      let tracker = await spawnTracker(dir.path);
      let api = client(tracker.url);
      const alice = await api.user('alice');
      await api.call('POST', '/v1/groups', { token: alice, body: { groupId: 'keep' } });
      const f = fakeManifest('kept');
      const peerId = randomPeerId();
      await api.call('POST', '/v1/groups/keep/files', {
        token: alice,
        body: { name: 'kept.bin', manifest: f.manifest, peerId },
      });
      const s = await openSession(tracker.url, alice);
      s.raw({ type: 'hello', v: 1, peerId, addresses: ['127.0.0.1:1'], seeding: [f.fileId] });
      await s.next('welcome');
      const keysBefore = (await api.call('GET', '/v1/cluster/keys')).body;

      // A crash leaves the presence row behind; the next start of this tracker clears it.
      expect(await tracker.stop('SIGKILL')).toBe(null);
      await s.close();

      tracker = await spawnTracker(dir.path);
      api = client(tracker.url);
      expect((await api.call('GET', '/v1/whoami', { token: alice })).body).toMatchObject({ userId: 'alice' });
      const files = await api.call<{ files: { fileId: string; seeders: number }[] }>(
        'GET',
        '/v1/groups/keep/files',
        {
          token: alice,
        },
      );
      expect(files.body.files).toEqual([expect.objectContaining({ fileId: f.fileId, seeders: 0 })]);
      const keysAfter = (await api.call('GET', '/v1/cluster/keys')).body;
      expect(keysAfter).toEqual(keysBefore);
      const t = await api.call<{ ticket: string }>('POST', `/v1/groups/keep/files/${f.fileId}/tickets`, {
        token: alice,
        body: { peerId },
      });
      await expect(verifyTicket(t.body.ticket, keysBefore as never)).resolves.toMatchObject({
        user: 'alice',
      });
      // SIGTERM and SIGINT shut down cleanly.
      expect(await tracker.stop('SIGINT')).toBe(0);
      tracker = await spawnTracker(dir.path);
      expect(await tracker.stop('SIGTERM')).toBe(0);
      expect(tracker.output()).toContain('shutting down');
    } finally {
      dir.remove();
    }
  });

  // `quit` typed on a terminal: run the tracker under a pseudo-terminal with util-linux `script`.
  it.skipIf(spawnSync('script', ['--version']).status !== 0)(
    'stops when `quit` is typed on its terminal',
    async () => {
      const dir = tempDir();
      try {
        const bin = fileURLToPath(new URL('../../bin/coterie.js', import.meta.url));
        const cmd = `${process.execPath} ${bin} tracker --port 0 --data-dir ${dir.path} --log-level warn`;
        const child = spawn('script', ['-qfec', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
        });
        const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
        const deadline = Date.now() + 15_000;
        while (!/listening on http/.test(out) && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 50));
        expect(out).toMatch(/listening on https:\/\/127\.0\.0\.1:\d+#sha256=[0-9a-f]{64}/);
        child.stdin.write('quit\n');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        expect(await exited).toBe(0);
        clearTimeout(timer);
        expect(out).toContain('quit, shutting down');
      } finally {
        dir.remove();
      }
    },
  );

  it('refuses bad flags with a usage error', async () => {
    const dir = tempDir();
    try {
      await expect(spawnTracker(dir.path, ['--port', '70000'])).rejects.toThrow(/--port must be an integer/);
      await expect(spawnTracker(dir.path, ['--tls-cert', 'x.pem'])).rejects.toThrow(/--tls-key/);
      await expect(spawnTracker(dir.path, ['--public-url', 'notaurl'])).rejects.toThrow(
        /invalid --public-url/,
      );
      await expect(spawnTracker(dir.path, ['--public-url', 'ftp://t1:7070'])).rejects.toThrow(
        /invalid --public-url/,
      );
      await expect(spawnTracker(dir.path, ['--log-level', 'loud'])).rejects.toThrow(
        /--log-level must be one of/,
      );
      const junk = join(dir.path, 'junk.pem');
      writeFileSync(junk, 'not a certificate');
      await expect(spawnTracker(dir.path, ['--tls-cert', junk, '--tls-key', junk])).rejects.toThrow(
        /no PEM certificate and matching key.*\[USAGE\]/,
      );
    } finally {
      dir.remove();
    }
  });

  it('serves HTTPS and WSS with --tls-cert/--tls-key', async () => {
    const dir = tempDir();
    try {
      const { certPem, keyPem } = await selfSignedTrackerCert();
      writeFileSync(join(dir.path, 'cert.pem'), certPem);
      writeFileSync(join(dir.path, 'key.pem'), keyPem);

      const tracker = await spawnTracker(join(dir.path, 'data'), [
        '--tls-cert',
        join(dir.path, 'cert.pem'),
        '--tls-key',
        join(dir.path, 'key.pem'),
      ]);
      try {
        expect(tracker.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
        const api = client(tracker.url, certPem);
        expect((await api.call('GET', '/healthz')).status).toBe(200);
        const token = await api.user('tls-user');
        const s = await openSession(tracker.url, token, { ca: certPem });
        s.raw({ type: 'hello', v: 1, peerId: randomPeerId(), addresses: [], seeding: [] });
        expect(await s.next('welcome')).toMatchObject({ userId: 'tls-user' });
        await s.close();
        // A client that neither pinned it (as the harness's clients do) nor trusts its CA refuses it.
        await expect(fetch(`${tracker.url}/healthz`)).rejects.toThrow();
      } finally {
        await tracker.stop();
      }
    } finally {
      dir.remove();
    }
  });
});
