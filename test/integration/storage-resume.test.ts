import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { FileList } from '../../src/protocol/api.js';
import type { StatusView } from '../../src/protocol/control.js';
import { randomFile, stop } from '../helpers/cli-harness.js';
import { cliSwarm } from '../helpers/cli-swarm.js';
import { filesUnder } from '../helpers/folder-group.js';
import { sample, scrapePeer } from '../helpers/metrics.js';
import { storageTrackerArgs } from '../helpers/storage-peer-fake.js';
import { daemonCall, signUp, storageGroup } from '../helpers/storage-swarm.js';
import { until } from '../helpers/wait.js';

// A storage peer SIGKILLed halfway through replicating a folder share resumes it when it is
// back (issue 16): its files' part and resume files keep the verified pieces, the files
// already finished stay, and only the remainder is fetched. The sharer's upload limit makes
// the fetch slow enough to kill it halfway; what the sharer served in all is read from its
// /metrics. Starting over would have cost the whole folder after the half already sent; the
// bound leaves room for what was in flight when the peer died (the resume file is written
// once a second). The grace is long, so the peer is back inside it and keeps its assignment.

type Name = 'alice' | 's1';
const GROUP = 'res';
const MIB = 1024 * 1024;
const FILES = 6;
const SIZE = FILES * MIB;

describe('a storage peer killed mid-fetch of a folder replica', { timeout: 150_000 }, () => {
  const swarm = cliSwarm<Name>('coterie-storage-resume-');
  const run = daemonCall<Name>(swarm.dir);
  const src = join(swarm.root, 'files', 'album');
  const served = async () =>
    sample((await scrapePeer(swarm.dir('alice'))).text, 'coterie_peer_uploaded_bytes_total');

  beforeAll(async () => {
    await swarm.startTracker(storageTrackerArgs(60_000, 'loose'));
    for (const n of ['alice', 's1'] as Name[]) await swarm.startPeer(n);
    await signUp(run, ['alice', 's1']);
    await storageGroup(run, 'alice', GROUP, ['s1'], { peers: ['s1'], quota: '50MiB' });
    mkdirSync(src, { recursive: true });
    for (let k = 0; k < FILES; k++) await randomFile(join(src, `track-${k}.bin`), MIB);
    await run('alice', 'upload_file', src, GROUP);
  }, 90_000);

  it('fetches only the remainder after a restart', async () => {
    const fileId = (await run<FileList>('alice', 'list_files', GROUP)).files[0]!.fileId;
    await swarm.ok('alice', 'set_limits', '--upload', '1MiB/s');
    const before = await served();
    await run('alice', 'set_replication', GROUP, '1');
    const done = async () =>
      (await run<StatusView>('s1', 'status')).storage?.fetching.find((f) => f.fileId === fileId)?.doneBytes ??
      0;
    await until('half the folder fetched', async () => (await done()) >= SIZE / 2, 60_000, 50);
    await stop(swarm.procs.get('s1')!.child, 'SIGKILL');
    const servedAtKill = (await served()) - before;
    expect(servedAtKill).toBeGreaterThanOrEqual(SIZE / 2);

    await swarm.startPeer('s1');
    await until(
      's1 holds the folder',
      async () => (await run<StatusView>('s1', 'status')).storage?.replicas === 1,
      90_000,
      100,
    );
    const total = (await served()) - before;
    // Starting over: servedAtKill + SIZE at least. Resumed: SIZE and what died in flight.
    expect(total).toBeLessThan(SIZE + 2 * MIB);
    expect(total).toBeLessThan(servedAtKill + SIZE);
    const replica = join(swarm.dir('s1'), 'storage', GROUP, fileId);
    expect(Object.values(filesUnder(replica))).toEqual(Array(FILES).fill(MIB));
    for (let k = 0; k < FILES; k++) {
      const path = `track-${k}.bin`;
      expect(readFileSync(join(replica, path)).equals(readFileSync(join(src, path))), path).toBe(true);
    }
  });
});
