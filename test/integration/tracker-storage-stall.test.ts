import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { fakeStorageGroup } from '../helpers/storage-group-fake.js';
import type { FakeStoragePeer } from '../helpers/storage-peer-fake.js';
import { storageTrackerArgs } from '../helpers/storage-peer-fake.js';
import { trackerPerFile } from '../helpers/tracker.js';
import { eventually } from '../helpers/wait.js';

// The tracker gives a replica fetch up after a while without progress, not after a time sized
// for its bytes (issue 16: a folder of thousands of small files overran that). Storage peers
// driven by hand: one is assigned the file and holds the order back, as if fetching; while it
// reports the fetch moving (`fetching`), the assignment stands through several stall periods
// and plans; once the reports stop, the next plan after the stall places the file on the other.
const STALL_MS = 3000;
const REPORT_MS = 300;
// Loose heartbeats: the fake peers' sessions must live through the whole test in a loaded process.
const ft = trackerPerFile([
  ...storageTrackerArgs(1000, 'loose'),
  '--storage-fetch-stall-ms',
  String(STALL_MS),
]);

const peers: FakeStoragePeer[] = [];
afterEach(async () => {
  for (const p of peers.splice(0)) await p.disconnect();
});

describe('storage fetches and the stall deadline', { timeout: 60_000 }, () => {
  it('keeps an assignment reported moving past the stall time; places one gone quiet elsewhere', async () => {
    const g = await fakeStorageGroup(ft, peers, 'stall', ['a', 'b'], 1);
    const fileId = g.fileIds[0]!;
    for (const p of g.storage) p.holdBack = true;
    await g.setReplication(1);
    const ordered = (p: FakeStoragePeer, type: 'replicate' | 'drop') =>
      p.orders.some((o) => o.type === type && o.fileId === fileId);
    const first = await eventually(async () => g.storage.find((p) => ordered(p, 'replicate')));
    const other = g.storage.find((p) => p !== first)!;
    const moving = () =>
      first.send({ type: 'replicas', groups: [{ groupId: g.groupId, held: [], fetching: [fileId] }] });

    // Three stall periods of progress, each report followed by a plan of the group.
    const until = performance.now() + 3 * STALL_MS;
    while (performance.now() < until) {
      moving();
      await sleep(REPORT_MS);
      expect((await g.setReplication(1)).status).toBe(200);
    }
    expect(ordered(first, 'drop')).toBe(false);
    expect(ordered(other, 'replicate')).toBe(false);

    // Quiet from now on: after the stall, a plan drops it there and places it on the other.
    await eventually(async () => {
      await g.setReplication(1);
      return ordered(other, 'replicate') && ordered(first, 'drop') ? true : undefined;
    }, 4 * STALL_MS);
  });
});
