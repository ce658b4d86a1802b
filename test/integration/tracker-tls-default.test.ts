import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type PeerDaemon, startPeerDaemon } from '../../src/peer/daemon.js';
import { coterie } from '../helpers/cli-harness.js';
import { request, spawnTracker, type TrackerProcess, tempDir } from '../helpers/tracker.js';
import { codeOf, until } from '../helpers/wait.js';

/** The fingerprint of the certificate a tracker keeps in its data directory. */
const keptFingerprint = (dataDir: string) =>
  createHash('sha256')
    .update(new X509Certificate(readFileSync(join(dataDir, 'tls-cert.pem'))).raw)
    .digest('hex');

const status = async (p: PeerDaemon) => (await p.execute('status', [])) as { tracker: string | null };

/**
 * A tracker without --tls-cert serves HTTPS/WSS with a certificate of its own,
 * kept in its data directory, and prints its URL with the fingerprint; peers
 * pin that (or the first certificate they see) and refuse another one.
 */
describe('TLS by default', { timeout: 120_000 }, () => {
  const peerStart = (dataDir: string, trackers: string[]) =>
    startPeerDaemon({
      dataDir,
      trackers,
      pool: { backoffMs: [0, 20, 50], jitter: 0 },
      trackerRetryForMs: 500,
    });

  it('makes a certificate at first start, keeps it, pins it in peers, and refuses a swapped one', async () => {
    const root = tempDir();
    const data = join(root.path, 'tracker');
    const peers: PeerDaemon[] = [];
    let tracker: TrackerProcess | undefined;
    try {
      tracker = await spawnTracker(data, [], { ownCertificate: true });
      expect(tracker.pinnedUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+#sha256=[0-9a-f]{64}$/);
      expect(tracker.fingerprint).toBe(keptFingerprint(data));
      expect(statSync(join(data, 'tls-key.pem')).mode & 0o777).toBe(0o600);
      const printed = `certificate sha256 ${tracker.fingerprint}`;
      await until('the fingerprint line', async () => tracker!.output().includes(printed));
      // The cluster lists it with its fingerprint, so a peer failing over pins the next one too.
      const cluster = await request<{ trackers: { url: string; fingerprint?: string }[] }>(
        tracker.url,
        'GET',
        '/v1/cluster',
      );
      expect(cluster.body.trackers).toEqual([
        expect.objectContaining({ url: tracker.url, fingerprint: tracker.fingerprint }),
      ]);
      // A plain-HTTP client gets no API answer from the TLS port.
      const plain = await request(`http://127.0.0.1:${tracker.port}`, 'GET', '/v1/cluster').catch(
        (e: Error) => e,
      );
      if (!(plain instanceof Error)) expect(plain.text).not.toContain('trackers');

      // Pinned from the printed URL; pinned at first use from the bare one.
      const pinned = await peerStart(join(root.path, 'pinned'), [tracker.pinnedUrl]);
      peers.push(pinned);
      const firstUse = await peerStart(join(root.path, 'first-use'), [tracker.url]);
      peers.push(firstUse);
      await pinned.execute('create_user', ['alice', 'alice-password']);
      await pinned.execute('login', ['alice', 'alice-password']);
      await firstUse.execute('create_user', ['bob', 'bob-password']);
      await firstUse.execute('login', ['bob', 'bob-password']);
      await until('both sessions up over WSS', async () => (await status(pinned)).tracker === tracker!.url);
      await until('the first-use session up', async () => (await status(firstUse)).tracker === tracker!.url);
      const kept = JSON.parse(readFileSync(join(root.path, 'first-use', 'tracker-pins.json'), 'utf8'));
      expect(kept).toEqual({ [tracker.url]: tracker.fingerprint });

      // A restart keeps the certificate.
      const { port, fingerprint } = tracker;
      await tracker.stop();
      tracker = await spawnTracker(data, [], { port });
      expect(tracker.fingerprint).toBe(fingerprint);
      await until('the pinned peer back', async () => (await status(pinned)).tracker === tracker!.url);
      expect(await pinned.execute('list_groups', [])).toBeDefined();

      // Another certificate on the same address (as a man in the middle would have): refused by both.
      await tracker.stop();
      rmSync(join(data, 'tls-cert.pem'));
      rmSync(join(data, 'tls-key.pem'));
      tracker = await spawnTracker(data, [], { port, ownCertificate: true });
      expect(tracker.fingerprint).not.toBe(fingerprint);
      expect(await codeOf(pinned.execute('list_groups', []))).toBe('TRACKER_CERT_CHANGED');
      expect(await codeOf(firstUse.execute('list_groups', []))).toBe('TRACKER_CERT_CHANGED');
      // Nor does the session get through: the tracker sees no session from them.
      await new Promise((r) => setTimeout(r, 1500));
      expect((await status(pinned)).tracker).toBeNull();
      const after = await request<{ trackers: { sessions: number }[] }>(tracker.url, 'GET', '/v1/cluster');
      expect(after.body.trackers[0]!.sessions).toBe(0);
      // Given the new URL, the peer accepts the new certificate.
      await pinned.stop();
      const again = await peerStart(join(root.path, 'pinned'), [tracker.pinnedUrl]);
      peers.push(again);
      expect(await again.execute('list_groups', [])).toBeDefined();
    } finally {
      for (const p of peers) await p.stop();
      await tracker?.stop();
      root.remove();
    }
  });

  it('serves plain HTTP only with --insecure-http, and says so', async () => {
    const root = tempDir();
    try {
      const tracker = await spawnTracker(root.path, ['--insecure-http']);
      expect(tracker.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(tracker.fingerprint).toBeUndefined();
      expect(tracker.output()).toContain('--insecure-http: plain HTTP');
      expect((await request(tracker.url, 'GET', '/healthz')).status).toBe(200);
      await tracker.stop();
      await expect(
        spawnTracker(root.path, ['--insecure-http', '--tls-cert', 'a', '--tls-key', 'b']),
      ).rejects.toThrow(/--insecure-http, not both/);
    } finally {
      root.remove();
    }
  });

  it('refuses a malformed fingerprint in a tracker URL with USAGE', async () => {
    const root = tempDir();
    try {
      expect(await codeOf(peerStart(join(root.path, 'p1'), ['https://127.0.0.1:1#sha256=abc']))).toBe(
        'USAGE',
      );
      const cli = await coterie([
        'peer',
        '--no-shell',
        '--data-dir',
        join(root.path, 'p2'),
        '--tracker',
        'https://127.0.0.1:1#md5=00',
      ]);
      expect(cli.code).not.toBe(0);
      expect(cli.err).toContain('[USAGE]');
      expect(cli.err).toContain('#sha256=');
    } finally {
      root.remove();
    }
  });
});
