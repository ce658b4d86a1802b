// Storage placement on a cluster: the owner works through tracker A, the storage peers hold
// sessions on tracker B, and the planner's orders reach them whichever tracker plans (the
// storage_orders event over LISTEN/NOTIFY). With A SIGKILLed, B takes the planner lease over
// once it expires and repairs the files of a storage peer gone beyond its grace.
import { afterAll, expect, it } from 'vitest';
import type { StorageList } from '../../src/protocol/api.js';
import { FakeStoragePeer, storageTrackerArgs } from '../helpers/storage-peer-fake.js';
import { client, fakeManifest, randomPeerId } from '../helpers/tracker.js';
import { eventually } from '../helpers/wait.js';
import { describeWithPg } from './pg.js';

const GRACE_MS = 1000;

describeWithPg(
  'storage placement across trackers',
  { prefix: 'coterie-storage-', timeout: 60_000, flags: storageTrackerArgs(GRACE_MS) },
  (cluster) => {
    const { trackers } = cluster;
    const storage: FakeStoragePeer[] = [];

    afterAll(async () => {
      for (const p of storage) await p.disconnect();
    });

    it('pushes orders to sessions on another tracker, and repairs after the planner’s tracker dies', async () => {
      const [a, b] = trackers.map((t) => client(t.url)) as [
        ReturnType<typeof client>,
        ReturnType<typeof client>,
      ];
      const owner = await a.user('xs-owner');
      const groupId = 'xs';
      await a.call('POST', '/v1/groups', { token: owner, body: { groupId } });
      const fileIds: string[] = [];
      for (let i = 0; i < 4; i++) {
        const f = fakeManifest(`xs-${i}`, 2000 + i);
        await a.call('POST', `/v1/groups/${groupId}/files`, {
          token: owner,
          body: { name: `x${i}.bin`, manifest: f.manifest, peerId: randomPeerId() },
        });
        fileIds.push(f.fileId);
      }
      for (const [i, zone] of ['a', 'b', 'c'].entries()) {
        const userId = `xs-s${i}`;
        const token = await a.user(userId);
        await a.call('POST', `/v1/groups/${groupId}/join`, { token });
        await a.call('POST', `/v1/groups/${groupId}/requests/${userId}/accept`, { token: owner });
        const p = new FakeStoragePeer(userId, token, zone);
        await p.connect(trackers[1]!.url);
        storage.push(p);
        await a.call('POST', `/v1/groups/${groupId}/storage`, {
          token,
          body: { peerId: p.peerId, quotaBytes: 1_000_000, zone },
        });
      }
      const holders = (fileId: string, among = storage) =>
        among.filter((p) => p.files(groupId).includes(fileId));
      const placed = await a.call('POST', `/v1/groups/${groupId}/replication`, {
        token: owner,
        body: { min: 2 },
      });
      expect(placed.status).toBe(200);
      await eventually(
        async () => (fileIds.every((f) => holders(f).length === 2) ? true : undefined),
        10_000,
      );

      // Tracker A dies; a storage peer leaves for longer than its grace: B plans once A's lease ran out.
      await trackers[0]!.stop('SIGKILL');
      const gone = storage.find((p) => p.files(groupId).length > 0)!;
      const itsFiles = gone.files(groupId);
      await gone.disconnect();
      const others = storage.filter((p) => p !== gone);
      await eventually(
        async () => (itsFiles.every((f) => holders(f, others).length === 2) ? true : undefined),
        15_000,
      );
      const list = await b.call<StorageList>('GET', `/v1/groups/${groupId}/storage`, { token: owner });
      expect(list.body.peers.find((p) => p.peerId === gone.peerId)?.state).toBe('gone');
      await eventually(async () => {
        const l = await b.call<StorageList>('GET', `/v1/groups/${groupId}/storage`, { token: owner });
        return l.body.replication.underReplicatedFiles === 0 ? true : undefined;
      });
    });
  },
);
