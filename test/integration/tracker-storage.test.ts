import { afterEach, describe, expect, it } from 'vitest';
import { rankPeers } from '../../src/core/placement.js';
import type { VersionList } from '../../src/protocol/api.js';
import { fakeStorageGroup } from '../helpers/storage-group-fake.js';
import { type FakeStoragePeer, storageTrackerArgs } from '../helpers/storage-peer-fake.js';
import { randomPeerId, trackerPerFile } from '../helpers/tracker.js';
import { eventually } from '../helpers/wait.js';

// Storage peers driven by hand over real sessions, each ended by closing its socket: a 3 s grace
// (a peer back after a third of it, or a listing made half way through, stays well inside it
// on a loaded machine), and heartbeats a stalled test process answers in time (loose).
const GRACE_MS = 3000;
const ft = trackerPerFile(storageTrackerArgs(GRACE_MS, 'loose'));

const peers: FakeStoragePeer[] = [];
afterEach(async () => {
  for (const p of peers.splice(0)) await p.disconnect();
});

const storageGroup = (prefix: string, zones: string[], files?: number) =>
  fakeStorageGroup(ft, peers, prefix, zones, files);

const codeOf = (r: { status: number; body: unknown }) =>
  (r.body as { error?: { code: string } }).error?.code ?? String(r.status);

describe('storage peers: offers, policy and refusals', () => {
  it('refuses non-members, non-owners, min above max and bad quotas, with codes; warns of too few peers', async () => {
    const g = await storageGroup('refuse', ['a', 'b'], 1);
    const api = ft.api;
    const stranger = await api.user('refuse-stranger');
    const offer = (token: string, body: unknown) =>
      api.call('POST', `/v1/groups/${g.groupId}/storage`, { token, body });
    expect(codeOf(await offer(stranger, { peerId: randomPeerId(), quotaBytes: 100 }))).toBe('NOT_A_MEMBER');
    expect(codeOf(await offer(g.owner, { peerId: randomPeerId(), quotaBytes: '50GiB' }))).toBe('BAD_REQUEST');
    expect(codeOf(await offer(g.owner, { peerId: randomPeerId(), quotaBytes: 0 }))).toBe('BAD_REQUEST');
    expect(codeOf(await offer(g.owner, { peerId: g.storage[0]!.peerId, quotaBytes: 100 }))).toBe(
      'PEER_MISMATCH',
    );

    const member = g.storage[0]!;
    const asMember = await api.call('POST', `/v1/groups/${g.groupId}/replication`, {
      token: member.token,
      body: { min: 1 },
    });
    expect(codeOf(asMember)).toBe('NOT_OWNER');
    expect(codeOf(await g.setReplication(3, 2))).toBe('BAD_REQUEST');
    expect(codeOf(await g.setReplication(-1))).toBe('BAD_REQUEST');
    expect((await g.list()).replication).toMatchObject({ min: 0, max: 0 });

    const tooMany = await g.setReplication(3);
    expect(tooMany.status).toBe(200);
    expect(tooMany.body).toMatchObject({
      groupId: g.groupId,
      min: 3,
      max: 3,
      storagePeers: 2,
      warning: 'under-replicated: 2 of 3 (2 storage peers)',
    });
    const withdrawNone = await api.call('POST', `/v1/groups/${g.groupId}/storage/withdraw`, {
      token: g.owner,
      body: {},
    });
    expect(codeOf(withdrawNone)).toBe('NOT_FOUND');
  });

  it('lists storage peers with zone, quota, use, replicas held and state', async () => {
    const g = await storageGroup('list', ['room', 'attic'], 3);
    await g.setReplication(1);
    await g.settledAt(1);
    const l = await g.list();
    expect(l.replication).toMatchObject({ min: 1, max: 1, storagePeers: 2, underReplicatedFiles: 0 });
    expect(l.replication.warning).toBeUndefined();
    expect(l.peers.map((p) => p.zone).sort()).toEqual(['attic', 'room']);
    expect(l.peers.reduce((n, p) => n + p.replicasHeld, 0)).toBe(3);
    for (const p of l.peers) {
      expect(p).toMatchObject({ state: 'live', quotaBytes: 1_000_000, withdrawing: false });
      expect(p.usedBytes).toBe(p.replicasHeld === 0 ? 0 : p.usedBytes);
    }
    expect(l.peers.reduce((n, p) => n + p.usedBytes, 0)).toBe(1000 + 1001 + 1002);
    await g.storage[0]!.disconnect();
    await eventually(async () =>
      (await g.list()).peers.find((p) => p.peerId === g.storage[0]!.peerId)?.state === 'grace'
        ? true
        : undefined,
    );
    await eventually(
      async () =>
        (await g.list()).peers.find((p) => p.peerId === g.storage[0]!.peerId)?.state === 'gone'
          ? true
          : undefined,
      GRACE_MS + 3000,
    );
  });
});

describe('storage peers: placement and repair', () => {
  it('places min replicas on distinct peers and zones, and holders serve as seeders with tickets', async () => {
    const g = await storageGroup('place', ['a', 'b', 'c'], 6);
    await g.setReplication(2);
    await g.settledAt(2);
    for (const holders of g.placement().values()) {
      expect(new Set(holders.map((p) => p.zone)).size).toBe(2);
    }
    // The sharer never connected: the storage peers are the file's seeders, and may fetch it with tickets.
    const [fileId, holders] = [...g.placement()][0]!;
    const reader = g.storage.find((p) => !holders.includes(p)) ?? holders[0]!;
    const seeders = await ft.api.call<{ seeders: { peerId: string }[] }>(
      'GET',
      `/v1/groups/${g.groupId}/files/${fileId}/seeders`,
      { token: reader.token },
    );
    expect(seeders.body.seeders.map((s) => s.peerId).sort()).toEqual(holders.map((p) => p.peerId).sort());
    const ticket = await ft.api.call('POST', `/v1/groups/${g.groupId}/files/${fileId}/tickets`, {
      token: holders[0]!.token,
      body: { peerId: holders[0]!.peerId },
    });
    expect(ticket.status).toBe(201);
    // Every order was a replicate: nothing was dropped along the way.
    expect(g.storage.flatMap((p) => p.orders).every((o) => o.type === 'replicate')).toBe(true);
  });

  it('lists each file’s verified replicas live / min and each version’s holders, and what is being repaired or moved', async () => {
    const g = await storageGroup('counts', ['a', 'b', 'c'], 2);
    for (const p of g.storage) p.holdBack = true;
    await g.setReplication(1);
    // Each file's first copy is assigned (below min: repairing), none held yet.
    await eventually(async () => {
      const h = (await g.list()).replication;
      return h.repairing === 2 && h.moving === 0 && h.underReplicatedFiles === 2 ? true : undefined;
    });
    expect((await g.listed()).map((f) => f.replicas)).toEqual([
      { live: 0, grace: 0, min: 1 },
      { live: 0, grace: 0, min: 1 },
    ]);
    for (const p of g.storage) p.release();
    await g.settledAt(1);
    expect((await g.list()).replication).toMatchObject({ repairing: 0, moving: 0, underReplicatedFiles: 0 });
    expect((await g.listed()).map((f) => f.replicas)).toEqual([
      { live: 1, grace: 0, min: 1 },
      { live: 1, grace: 0, min: 1 },
    ]);
    // A holder withdraws: its copies are at min still, and move while the others fetch.
    const leaving = g.placement().get(g.fileIds[0]!)![0]!;
    const moved = leaving.files(g.groupId).length;
    for (const p of g.storage) if (p !== leaving) p.holdBack = true;
    await ft.api.call('POST', `/v1/groups/${g.groupId}/storage/withdraw`, { token: leaving.token, body: {} });
    await eventually(async () => ((await g.list()).replication.moving === moved ? true : undefined));
    expect((await g.list()).replication).toMatchObject({ repairing: 0, underReplicatedFiles: 0 });
    for (const p of g.storage) p.release();
    await g.settledAt(1);
    const versions = (
      await ft.api.call<VersionList>('GET', `/v1/groups/${g.groupId}/files/f0.bin/versions`, {
        token: g.owner,
      })
    ).body;
    const [holder] = g.placement().get(versions.versions[0]!.fileId)!;
    expect(versions.versions[0]!.replicas).toEqual([
      { peerId: holder!.peerId, userId: holder!.userId, state: 'live' },
    ]);
  });

  it('a group without policy or storage peers lists no replica counts', async () => {
    const g = await storageGroup('none', [], 1);
    expect((await g.listed())[0]!.replicas).toBeUndefined();
    const v = await ft.api.call<VersionList>('GET', `/v1/groups/${g.groupId}/files/f0.bin/versions`, {
      token: g.owner,
    });
    expect(v.body.versions[0]!.replicas).toBeUndefined();
  });

  it('causes no repair for a peer back inside its grace', async () => {
    const g = await storageGroup('inside', ['a', 'b', 'c'], 6);
    await g.setReplication(2);
    await g.settledAt(2);
    const before = g.storage.map((p) => p.orders.length);
    const away = g.storage[0]!;
    await away.disconnect();
    await new Promise((r) => setTimeout(r, GRACE_MS / 3));
    await away.connect(ft.tracker.url);
    await new Promise((r) => setTimeout(r, GRACE_MS + 600));
    expect(g.storage.map((p) => p.orders.length)).toEqual(before);
    await g.settledAt(2);
  });

  it('repairs the files of a peer gone beyond its grace elsewhere, then trims them to max when it returns', async () => {
    const g = await storageGroup('beyond', ['a', 'b', 'c', 'd'], 8);
    await g.setReplication(2);
    await g.settledAt(2);
    const gone = g.storage.find((p) => p.files(g.groupId).length > 0)!;
    const itsFiles = gone.files(g.groupId);
    await gone.disconnect();
    const others = g.storage.filter((p) => p !== gone);
    // Within the grace nothing moves…
    await new Promise((r) => setTimeout(r, GRACE_MS / 2));
    for (const f of itsFiles) expect(others.filter((p) => p.files(g.groupId).includes(f))).toHaveLength(1);
    // …and the listings say its copies are in their grace: one live, one away, of min 2.
    const inGrace = await g.listed();
    for (const f of inGrace.filter((x) => itsFiles.includes(x.fileId))) {
      expect(f.replicas).toEqual({ live: 1, grace: 1, min: 2 });
    }
    // …after it, each of its files gets a second copy among the others, in another zone where possible.
    await eventually(async () =>
      itsFiles.every((f) => others.filter((p) => p.files(g.groupId).includes(f)).length === 2)
        ? true
        : undefined,
    );
    const m = await ft.api.call('GET', '/metrics', {});
    expect(m.text).toMatch(/coterie_replica_bytes_total [1-9]/);
    expect(m.text).toMatch(/coterie_files_under_replicated \d/);
    // The peers hold them at once; the tracker counts them once their reports are in.
    await eventually(async () =>
      (await g.list()).replication.underReplicatedFiles === 0 ? true : undefined,
    );
    expect(m.text).toMatch(
      /coterie_http_request_seconds_bucket\{[^}]*route="\/v1\/groups\/:groupId\/storage"/,
    );
    // Back, still holding its copies: three of each now, trimmed to 2, keeping the best-ranked holders.
    await gone.connect(ft.tracker.url);
    await g.settledAt(2);
    for (const [fileId, holders] of g.placement()) {
      const all = g.storage.filter((p) => holders.includes(p) || p.orders.some((o) => o.fileId === fileId));
      const best = rankPeers(fileId, all)
        .slice(0, 2)
        .map((p) => p.peerId)
        .sort();
      if (itsFiles.includes(fileId)) expect(holders.map((p) => p.peerId).sort()).toEqual(best);
    }
    const drops = g.storage.flatMap((p) => p.orders).filter((o) => o.type === 'drop');
    expect(drops).toHaveLength(itsFiles.length);
    expect(drops.every((d) => d.type === 'drop' && d.reason === 'surplus')).toBe(true);
  });

  it('replaces a replica reported corrupt on another peer', async () => {
    const g = await storageGroup('corrupt', ['a', 'b', 'c'], 4);
    await g.setReplication(1);
    await g.settledAt(1);
    const [fileId, [holder]] = [...g.placement()][0]!;
    holder!.corrupt(g.groupId, fileId);
    await eventually(async () =>
      holder!.orders.some((o) => o.type === 'drop' && o.fileId === fileId && o.reason === 'corrupt')
        ? true
        : undefined,
    );
    await g.settledAt(1);
    expect(g.placement().get(fileId)![0]).not.toBe(holder);
  });

  it('trims to a lower max, and moves a withdrawing peer’s replicas before dropping them', async () => {
    const g = await storageGroup('trim', ['a', 'b', 'c'], 6);
    await g.setReplication(3);
    await g.settledAt(3);
    await g.setReplication(1, 2);
    await g.settledAt(2);
    // Two copies on three peers: a withdrawing holder's copies must first go to the third.
    await g.setReplication(2);
    const leaving = g.storage[1]!;
    const had = leaving.files(g.groupId);
    const ordersBefore = leaving.orders.length;
    const w = await ft.api.call('POST', `/v1/groups/${g.groupId}/storage/withdraw`, {
      token: leaving.token,
      body: {},
    });
    expect(w.body).toEqual({ groupId: g.groupId, peerIds: [leaving.peerId], ended: false });
    await eventually(async () => (leaving.files(g.groupId).length === 0 ? true : undefined));
    await g.settledAt(2);
    const drops = leaving.orders.slice(ordersBefore);
    expect(drops.map((o) => o.fileId).sort()).toEqual(had);
    for (const d of drops) {
      expect(d).toMatchObject({ type: 'drop', reason: 'withdrawn' });
      const moved = g.storage
        .filter((p) => p !== leaving)
        .flatMap((p) => p.orders)
        .filter((o) => o.type === 'replicate' && o.fileId === d.fileId);
      expect(Math.max(...moved.map((o) => o.at))).toBeLessThanOrEqual(d.at);
    }
    await eventually(async () =>
      (await g.list()).peers.some((p) => p.peerId === leaving.peerId) ? undefined : true,
    );
  });
});

describe('storage peers: files outlive their sharers', () => {
  it('keeps a file listed and served while a replica remains, and delists it with its last copy', async () => {
    const g = await storageGroup('outlive', ['a', 'b'], 2);
    await g.setReplication(1);
    await g.settledAt(1);
    const fileId = g.fileIds[0]!;
    const stop = await ft.api.call('DELETE', `/v1/groups/${g.groupId}/files/${fileId}`, { token: g.owner });
    expect(stop.body).toMatchObject({ fileId, listed: true });
    const listed = async () =>
      (
        await ft.api.call<{ files: { fileId: string; sharers: string[] }[] }>(
          'GET',
          `/v1/groups/${g.groupId}/files`,
          {
            token: g.owner,
          },
        )
      ).body.files.map((f) => f.fileId);
    expect(await listed()).toContain(fileId);
    const seeders = await ft.api.call<{ seeders: { peerId: string }[] }>(
      'GET',
      `/v1/groups/${g.groupId}/files/${fileId}/seeders`,
      { token: g.owner },
    );
    expect(seeders.body.seeders.map((s) => s.peerId)).toEqual(
      g
        .placement()
        .get(fileId)!
        .map((p) => p.peerId),
    );
    // No more replication: the copies are dropped, and the file nobody shares leaves the listing.
    await g.setReplication(0);
    await eventually(async () => ((await listed()).includes(fileId) ? undefined : true));
    expect(await listed()).toEqual([g.fileIds[1]]);
  });
});
