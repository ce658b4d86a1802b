// A group of fake storage peers on a tracker of the file (trackerPerFile): the storage suites that
// drive storage peers by hand over real sessions share it.
import { expect } from 'vitest';
import type { FileList, StorageList } from '../../src/protocol/api.js';
import { FakeStoragePeer } from './storage-peer-fake.js';
import { type FileTracker, fakeManifest, randomPeerId } from './tracker.js';
import { eventually } from './wait.js';

/**
 * A group owned by `<prefix>-owner` with `files` shared (by a peer that is not connected) and
 * `zones.length` storage peers, each pushed on `peers` (the caller disconnects them).
 */
export async function fakeStorageGroup(
  ft: FileTracker,
  peers: FakeStoragePeer[],
  prefix: string,
  zones: string[],
  files = 6,
) {
  const api = ft.api;
  const owner = await api.user(`${prefix}-owner`);
  const groupId = `${prefix}-g`;
  await api.call('POST', '/v1/groups', { token: owner, body: { groupId } });
  const fileIds: string[] = [];
  for (let i = 0; i < files; i++) {
    const f = fakeManifest(`${prefix}-${i}`, 1000 + i);
    await api.call('POST', `/v1/groups/${groupId}/files`, {
      token: owner,
      body: { name: `f${i}.bin`, manifest: f.manifest, peerId: randomPeerId() },
    });
    fileIds.push(f.fileId);
  }
  const storage: FakeStoragePeer[] = [];
  for (const [i, zone] of zones.entries()) {
    const userId = `${prefix}-s${i}`;
    const token = await api.user(userId);
    await api.call('POST', `/v1/groups/${groupId}/join`, { token });
    await api.call('POST', `/v1/groups/${groupId}/requests/${userId}/accept`, { token: owner });
    const p = new FakeStoragePeer(userId, token, zone);
    await p.connect(ft.tracker.url);
    const offer = await api.call('POST', `/v1/groups/${groupId}/storage`, {
      token,
      body: { peerId: p.peerId, quotaBytes: 1_000_000, zone },
    });
    expect(offer.status).toBe(200);
    peers.push(p);
    storage.push(p);
  }
  const setReplication = (min: number, max?: number) =>
    api.call('POST', `/v1/groups/${groupId}/replication`, {
      token: owner,
      body: max === undefined ? { min } : { min, max },
    });
  const list = async () =>
    (await api.call<StorageList>('GET', `/v1/groups/${groupId}/storage`, { token: owner })).body;
  /** file id → the storage peers holding it. */
  const placement = () => {
    const out = new Map<string, FakeStoragePeer[]>(fileIds.map((f) => [f, []]));
    for (const p of storage) for (const f of p.files(groupId)) out.get(f)?.push(p);
    return out;
  };
  /** Waits until every file is held by exactly `n` peers, and the tracker counts exactly those, none in flight. */
  const settledAt = async (n: number, timeoutMs = 8000) => {
    await eventually(async () => {
      const counts = [...placement().values()].map((ps) => ps.length);
      if (!counts.every((c) => c === n)) return undefined;
      const tracked = (await list()).peers.filter((p) => p.state === 'live');
      const held = tracked.reduce((sum, p) => sum + p.replicasHeld, 0);
      const assigned = tracked.reduce((sum, p) => sum + p.replicasAssigned, 0);
      return held === n * fileIds.length && assigned === 0 ? true : undefined;
    }, timeoutMs);
  };
  const listed = async () =>
    (await api.call<FileList>('GET', `/v1/groups/${groupId}/files`, { token: owner })).body.files;
  return { owner, groupId, fileIds, storage, setReplication, list, listed, placement, settledAt };
}
