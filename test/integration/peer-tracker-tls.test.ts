import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PeerDaemon, startPeerDaemon } from '../../src/peer/daemon.js';
import { CoterieError } from '../../src/protocol/errors.js';
import { type RunningTracker, startTracker } from '../../src/tracker/index.js';
import { selfSignedTrackerCert } from '../fixtures/tls-cert.js';
import { suiteTempDir } from '../helpers/temp-dir.js';
import { until } from '../helpers/wait.js';

describe('peer ↔ https tracker with --tracker-ca', () => {
  const root = suiteTempDir('coterie-tls-').path;
  let tracker: RunningTracker;
  const peers: PeerDaemon[] = [];
  let caFile: string;

  beforeAll(async () => {
    const { certPem, keyPem } = await selfSignedTrackerCert();
    caFile = join(root, 'tracker-ca.pem');
    writeFileSync(caFile, certPem);
    tracker = await startTracker({
      dataDir: join(root, 'tracker'),
      port: 0,
      tls: { cert: certPem, key: keyPem },
      logLevel: 'silent',
    });
  });

  afterAll(async () => {
    for (const p of peers) await p.stop();
    await tracker?.close();
  });

  const start = async (name: string, trackerCaFile?: string) => {
    const d = await startPeerDaemon({
      dataDir: join(root, name),
      trackers: [tracker.url],
      pool: { backoffMs: [0, 20, 50], jitter: 0 },
      trackerRetryForMs: 500,
      ...(trackerCaFile === undefined ? {} : { trackerCaFile }),
    });
    peers.push(d);
    return d;
  };

  it('talks HTTPS and WSS to a tracker whose CA it was told to trust', async () => {
    expect(tracker.url).toMatch(/^https:/);
    const alice = await start('alice', caFile);
    await alice.execute('create_user', ['alice', 'alice-password']);
    await alice.execute('login', ['alice', 'alice-password']);
    await until('the session is up', async () => {
      const s = (await alice.execute('status', [])) as { tracker: string | null };
      return s.tracker === tracker.url;
    });
    await alice.execute('create_group', ['secure']);
    const groups = (await alice.execute('list_groups', [])) as { groups: { groupId: string }[] };
    expect(groups.groups.map((g) => g.groupId)).toContain('secure');
  });

  it('refuses the tracker when its certificate is not from the CA it was told to trust', async () => {
    // Without --tracker-ca the bare https:// URL would be pinned at first use (tracker-tls-default.test.ts).
    const otherCa = join(root, 'other-ca.pem');
    writeFileSync(otherCa, (await selfSignedTrackerCert()).certPem);
    const mallory = await start('mallory', otherCa);
    const err = await mallory
      .execute('create_user', ['mallory', 'mallory-password'])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CoterieError);
    expect((err as CoterieError).code).toBe('TRACKER_UNAVAILABLE');
  });

  it('says clearly when the CA file is missing or not a certificate', async () => {
    await expect(start('nofile', join(root, 'missing.pem'))).rejects.toMatchObject({ code: 'PATH_INVALID' });
    const notPem = join(root, 'not.pem');
    writeFileSync(notPem, 'hello');
    await expect(start('notpem', notPem)).rejects.toMatchObject({ code: 'PATH_INVALID' });
  });
});
