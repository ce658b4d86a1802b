import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FileList, StorageList, VersionList } from '../../src/protocol/api.js';
import type { StatusView } from '../../src/protocol/control.js';
import { randomFile, stop, until } from '../helpers/cli-harness.js';
import { cliSwarm } from '../helpers/cli-swarm.js';
import { storageTrackerArgs } from '../helpers/storage-peer-fake.js';
import { daemonCall, signUp, storageGroup } from '../helpers/storage-swarm.js';
import { mountTmpfs, type Tmpfs, tmpfsOrSkip } from '../helpers/tmpfs.js';

// A storage peer's own DISK_FULL (issue 16): its quota says 10 MiB but its --storage-dir is a
// 1 MiB tmpfs. A replicate order for a 2 MiB file fails there with DISK_FULL before any byte
// moves, the peer reports it missing, the tracker counts no replica there, and once another
// storage peer offers space the file is placed on that one. Mounting needs root.
const CAN_MOUNT = tmpfsOrSkip('storage-disk-full');
type Name = 'alice' | 'small' | 'roomy';
const GROUP = 'full';

describe.runIf(CAN_MOUNT)('a storage peer whose disk is smaller than its quota', { timeout: 120_000 }, () => {
  const swarm = cliSwarm<Name>('coterie-storage-full-');
  const run = daemonCall<Name>(swarm.dir);
  let disk: Tmpfs;

  beforeAll(async () => {
    disk = mountTmpfs(1024 * 1024);
    await swarm.startTracker(storageTrackerArgs(1500, 'loose'));
    for (const n of ['alice', 'small', 'roomy'] as Name[]) {
      await swarm.startPeer(n, n === 'small' ? ['--storage-dir', disk.dir] : []);
    }
    await signUp(run, ['alice', 'small', 'roomy']);
    await storageGroup(run, 'alice', GROUP, ['small', 'roomy']);
  }, 90_000);
  // After-hooks run last-registered first: the peer on the tmpfs stops before the unmount,
  // and the swarm's own hook finds it stopped.
  afterAll(async () => {
    const small = swarm.procs.get('small');
    if (small !== undefined) await stop(small.child);
    disk?.unmount();
  }, 30_000);

  it('refuses the replica with DISK_FULL, keeps nothing, and the file is placed on a peer with room', async () => {
    const path = join(swarm.root, 'big.bin');
    await randomFile(path, 2 * 1024 * 1024);
    await run('alice', 'upload_file', path, GROUP);
    await run('small', 'offer_storage', GROUP, '10MiB');
    await run('alice', 'set_replication', GROUP, '1');
    const log = join(swarm.dir('small'), 'peer.log');
    await until('the small peer refused with DISK_FULL', () =>
      readFileSync(log, 'utf8')
        .split('\n')
        .some((l) => l.includes('"replica fetch failed"') && l.includes('"code":"DISK_FULL"')),
    );
    const line = readFileSync(log, 'utf8')
      .split('\n')
      .find((l) => l.includes('"code":"DISK_FULL"'))!;
    expect(JSON.parse(line).err).toMatch(/does not fit: .* free in /);
    // The tracker counts no copy there: the file stays below min, with nothing held.
    const before = await run<StorageList>('alice', 'list_storage', GROUP);
    expect(before.replication.underReplicatedFiles).toBe(1);
    expect(before.peers.map((p) => [p.userId, p.replicasHeld])).toEqual([['small', 0]]);
    expect(readdirSync(disk.dir).flatMap((d) => readdirSync(join(disk.dir, d)))).toEqual([]);

    await run('roomy', 'offer_storage', GROUP, '10MiB');
    await until('one verified replica, on the roomy peer', async () => {
      const [f] = (await run<FileList>('alice', 'list_files', GROUP)).files;
      return f?.replicas?.live === 1;
    });
    const v = await run<VersionList>('alice', 'list_versions', GROUP, 'big.bin');
    expect(v.versions[0]!.replicas!.map((r) => r.userId)).toEqual(['roomy']);
    const small = await run<StatusView>('small', 'status');
    expect(small.storage?.replicas ?? 0).toBe(0);
    expect(readdirSync(disk.dir).flatMap((d) => readdirSync(join(disk.dir, d)))).toEqual([]);
  });
});
