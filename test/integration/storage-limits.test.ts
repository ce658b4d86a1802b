import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { FileList } from '../../src/protocol/api.js';
import type { StatusView } from '../../src/protocol/control.js';
import { randomFile } from '../helpers/cli-harness.js';
import { cliSwarm } from '../helpers/cli-swarm.js';
import { storageTrackerArgs } from '../helpers/storage-peer-fake.js';
import { daemonCall, signUp, storageGroup } from '../helpers/storage-swarm.js';
import { until } from '../helpers/wait.js';

// A storage peer's replica fetches are held to its bandwidth limits like any download (issues
// 16 and 17): first its group's download limit set at run time, then its global one. The rate
// is measured from the storage peer's own progress (the verified bytes of the fetch in its
// status), between 1 MiB verified and the replica held, so that the planner's delay before
// the fetch starts counts for nothing. A loaded machine can only make the fetch slower, so
// the bound that matters, not faster than twice the limit, is not timing-flaky; unlimited,
// loopback moves these 4 MiB many times faster. The fetches (8 s each) outlast the tracker's
// stall deadline (5 s), and every poll makes it plan the group: the storage peer's progress
// reports are what keep its assignments.

type Name = 'alice' | 's1';
const GROUP = 'lim';
const SIZE = 4 * 1024 * 1024;
const LIMIT = 512 * 1024;
const FROM = 1024 * 1024;

describe('storage fetches and the bandwidth limits', { timeout: 120_000 }, () => {
  const swarm = cliSwarm<Name>('coterie-storage-limits-');
  const run = daemonCall<Name>(swarm.dir);

  beforeAll(async () => {
    await swarm.startTracker([...storageTrackerArgs(1500, 'loose'), '--storage-fetch-stall-ms', '5000']);
    for (const n of ['alice', 's1'] as Name[]) await swarm.startPeer(n);
    await signUp(run, ['alice', 's1']);
    await storageGroup(run, 'alice', GROUP, ['s1'], { peers: ['s1'], quota: '50MiB' });
  }, 90_000);

  /** Shares a file of SIZE random bytes; how fast s1's replica fetch of it ran, bytes/s. */
  const replicationRate = async (name: string, held: number): Promise<number> => {
    const path = join(swarm.root, name);
    await randomFile(path, SIZE);
    await run('alice', 'upload_file', path, GROUP);
    const files = (await run<FileList>('alice', 'list_files', GROUP)).files;
    const fileId = files.find((f) => f.name === name)!.fileId;
    await run('alice', 'set_replication', GROUP, '1');
    let from: number | undefined;
    await until(
      `s1 holds ${name}`,
      async () => {
        await run('alice', 'set_replication', GROUP, '1');
        const storage = (await run<StatusView>('s1', 'status')).storage;
        const fetching = storage?.fetching.find((f) => f.fileId === fileId);
        if (fetching !== undefined && fetching.doneBytes >= FROM) from ??= performance.now();
        return fetching === undefined && from !== undefined && (storage?.replicas ?? 0) === held;
      },
      90_000,
      100,
    );
    expect(readFileSync(join(swarm.dir('s1'), 'peer.log'), 'utf8')).not.toMatch(/"replica (fetch )?dropped"/);
    return (SIZE - FROM) / ((performance.now() - from!) / 1000);
  };

  it('holds a replica fetch to its group download limit, then to the global one', async () => {
    await swarm.ok('s1', 'set_limits', '--group', GROUP, '--download', '512KiB/s');
    const byGroup = await replicationRate('one.bin', 1);
    expect(byGroup).toBeLessThan(2 * LIMIT);

    await swarm.ok('s1', 'set_limits', '--group', GROUP, '--download', '0');
    await swarm.ok('s1', 'set_limits', '--download', '512KiB/s');
    const global = await replicationRate('two.bin', 2);
    expect(global).toBeLessThan(2 * LIMIT);
    // ...and not stalled by it either (a loaded machine may slow it, not by 8 times).
    expect(Math.min(byGroup, global)).toBeGreaterThan(LIMIT / 8);
  });
});
