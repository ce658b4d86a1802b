import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTracker, type TrackerOptions } from '../../src/tracker/index.js';
import { suiteTempDir } from '../helpers/temp-dir.js';
import { client, fakeManifest, greet, openSession, randomPeerId } from '../helpers/tracker.js';
import { until } from '../helpers/wait.js';

// A file lookup's answer is kept as JSON text between requests (services/lookup-answers.ts).
// Each test warms it with repeated lookups, changes what the answer says, and reads the
// change on the very next lookup: no TTL (1 s by default) passes in between. The tracker
// runs in this process with a read cache TTL of 10 minutes, so a test passes only because the
// change itself invalidated the answer, never because an entry expired.
let tracker: Awaited<ReturnType<typeof startTracker>>;
const dir = suiteTempDir();
beforeAll(async () => {
  // startTracker takes TRACKER_DEFAULTS' settings too (its options are spread over them).
  const settings: TrackerOptions & { readCacheMs: number } = {
    port: 0,
    dataDir: dir.path,
    logLevel: 'silent',
    scryptLogN: 10,
    readCacheMs: 600_000,
  };
  tracker = await startTracker(settings);
});
afterAll(async () => {
  await tracker?.close();
});
const fileTracker = {
  get api() {
    return client(tracker.url);
  },
  get tracker() {
    return tracker;
  },
};
type Lookup = {
  name: string;
  version: number;
  sharers: string[];
  seeders: { peerId: string }[];
  error?: { code: string };
};

async function sharedFile(prefix: string) {
  const api = fileTracker.api;
  const owner = await api.user(`${prefix}-owner`);
  const member = await api.user(`${prefix}-member`);
  const group = `${prefix}-g`;
  await api.call('POST', '/v1/groups', { token: owner, body: { groupId: group } });
  await api.call('POST', `/v1/groups/${group}/join`, { token: member });
  await api.call('POST', `/v1/groups/${group}/requests/${prefix}-member/accept`, { token: owner });
  const f = fakeManifest(prefix);
  const ownerPeer = randomPeerId();
  await api.call('POST', `/v1/groups/${group}/files`, {
    token: owner,
    body: { name: `${prefix}.bin`, manifest: f.manifest, peerId: ownerPeer },
  });
  const lookup = (token: string, file = f.fileId) =>
    api.call<Lookup>('GET', `/v1/groups/${group}/files/${file}`, { token });
  /** Three lookups: the first builds the answer, the next ones are served from the cache. */
  const warm = async (token: string) => {
    for (let i = 0; i < 3; i++) expect((await lookup(token)).status).toBe(200);
  };
  return { owner, member, group, f, ownerPeer, lookup, warm };
}

describe('the cached lookup answer', () => {
  it('shows a seeder that announces, and drops it when it unannounces or leaves', async () => {
    const x = await sharedFile('lc-seed');
    await x.warm(x.member);
    expect((await x.lookup(x.member)).body.seeders).toEqual([]);
    const s = await openSession(fileTracker.tracker.url, x.owner);
    await greet(s, { peerId: x.ownerPeer, seeding: [x.f.fileId] });
    expect((await x.lookup(x.member)).body.seeders.map((p) => p.peerId)).toEqual([x.ownerPeer]);
    await x.warm(x.member);
    s.raw({ type: 'unannounce', id: 'u', files: [x.f.fileId] });
    await s.next('ack');
    expect((await x.lookup(x.member)).body.seeders).toEqual([]);
    s.raw({ type: 'announce', id: 'a', files: [x.f.fileId] });
    await s.next('ack');
    expect((await x.lookup(x.member)).body.seeders.map((p) => p.peerId)).toEqual([x.ownerPeer]);
    await x.warm(x.member);
    await s.close();
    // The session's end is handled after the socket closes on the tracker's side: wait for it.
    await until(
      'the seeder to leave the answer',
      async () => (await x.lookup(x.member)).body.seeders.length === 0,
      5000,
      20,
    );
  });

  it('answers 403 to a member removed or gone at once, and lists their shares no more', async () => {
    const x = await sharedFile('lc-member');
    const memberPeer = randomPeerId();
    await fileTracker.api.call('POST', `/v1/groups/${x.group}/files`, {
      token: x.member,
      body: { name: 'lc-member.bin', manifest: x.f.manifest, peerId: memberPeer },
    });
    await x.warm(x.member);
    await x.warm(x.owner);
    expect((await x.lookup(x.owner)).body.sharers).toEqual(['lc-member-member', 'lc-member-owner']);
    const removed = await fileTracker.api.call(
      'POST',
      `/v1/groups/${x.group}/members/lc-member-member/remove`,
      {
        token: x.owner,
      },
    );
    expect(removed.status).toBe(200);
    const refused = await x.lookup(x.member);
    expect(refused.status).toBe(403);
    expect(refused.body.error?.code).toBe('NOT_A_MEMBER');
    expect((await x.lookup(x.owner)).body.sharers).toEqual(['lc-member-owner']);

    // A member who leaves: the same at once.
    const y = await sharedFile('lc-leave');
    await y.warm(y.member);
    expect(
      (await fileTracker.api.call('POST', `/v1/groups/${y.group}/leave`, { token: y.member })).status,
    ).toBe(200);
    expect((await y.lookup(y.member)).body.error?.code).toBe('NOT_A_MEMBER');
  });

  it('answers 404 for a deleted file, and the new version after an update', async () => {
    const x = await sharedFile('lc-del');
    await x.warm(x.member);
    await x.warm(x.member);
    const byName = () => x.lookup(x.member, 'lc-del.bin');
    expect((await byName()).body.version).toBe(1);
    expect((await byName()).body.version).toBe(1);
    const next = fakeManifest('lc-del-v2');
    const updated = await fileTracker.api.call('POST', `/v1/groups/${x.group}/files/lc-del.bin/versions`, {
      token: x.owner,
      body: { manifest: next.manifest, peerId: x.ownerPeer },
    });
    expect(updated.status).toBe(201);
    expect((await byName()).body.version).toBe(2);
    const deleted = await fileTracker.api.call('POST', `/v1/groups/${x.group}/files/lc-del.bin/delete`, {
      token: x.owner,
    });
    expect(deleted.status).toBe(200);
    const gone = await x.lookup(x.member);
    expect(gone.status).toBe(404);
    expect(gone.body.error?.code).toBe('FILE_NOT_FOUND');
    expect((await byName()).status).toBe(404);
  });
});
