// File versions, deletes and locks through a real tracker's HTTP API and sessions (issue 16).
import { describe, expect, it } from 'vitest';
import {
  fakeManifest,
  openSession,
  randomPeerId,
  type SessionClient,
  trackerPerFile,
} from '../helpers/tracker.js';
import { until } from '../helpers/wait.js';

// Short heartbeats: a lock held through a dead peer's session ends with it, long before the
// lock's TTL. Not shorter: every session of this file must answer pings in time from a loaded
// test process (at 150 ms, a stalled worker would have its live sessions cut).
const fileTracker = trackerPerFile(['--heartbeat-interval-ms', '500', '--heartbeat-timeout-ms', '1000']);

interface Err {
  error: { code: string; message: string; details?: Record<string, unknown> };
}
type Body = Record<string, unknown> & Partial<Err>;

async function groupOf(prefix: string) {
  const api = fileTracker.api;
  const owner = await api.user(`${prefix}-owner`);
  const alice = await api.user(`${prefix}-alice`);
  const bob = await api.user(`${prefix}-bob`);
  const outsider = await api.user(`${prefix}-out`);
  const group = `${prefix}-g`;
  await api.call('POST', '/v1/groups', { token: owner, body: { groupId: group } });
  for (const who of [alice, bob]) await api.call('POST', `/v1/groups/${group}/join`, { token: who });
  for (const u of ['alice', 'bob']) {
    await api.call('POST', `/v1/groups/${group}/requests/${prefix}-${u}/accept`, { token: owner });
  }
  const files = `/v1/groups/${group}/files`;
  const call = (token: string, method: string, path: string, body?: unknown) =>
    api.call<Body>(method, `${files}${path}`, { token, ...(body === undefined ? {} : { body }) });
  return {
    owner,
    alice,
    bob,
    outsider,
    group,
    call,
    share: (token: string, name: string, seed: string) =>
      call(token, 'POST', '', { name, manifest: fakeManifest(seed).manifest, peerId: randomPeerId() }),
    update: (token: string, name: string, seed: string, ifVersion?: number) =>
      call(token, 'POST', `/${encodeURIComponent(name)}/versions`, {
        manifest: fakeManifest(seed).manifest,
        peerId: randomPeerId(),
        ...(ifVersion === undefined ? {} : { ifVersion }),
      }),
  };
}

const code = (r: { body: Body }) => r.body.error?.code;

async function hello(token: string, peerId = randomPeerId()): Promise<SessionClient & { peerId: string }> {
  const s = await openSession(fileTracker.tracker.url, token);
  s.raw({ type: 'hello', v: 1, peerId, addresses: [], seeding: [] });
  await s.next('welcome');
  return Object.assign(s, { peerId });
}

describe('versions', () => {
  it('numbers updates without gaps, lists the current one, and keeps earlier ones downloadable', async () => {
    const g = await groupOf('ver');
    const first = await g.share(g.alice, 'notes.txt', 'v1');
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ version: 1, created: true });

    const u2 = await g.update(g.bob, 'notes.txt', 'v2');
    expect(u2.status).toBe(201);
    expect(u2.body).toMatchObject({
      name: 'notes.txt',
      version: 2,
      fileId: fakeManifest('v2').fileId,
      created: true,
    });
    const u3 = await g.update(g.alice, 'notes.txt', 'v3', 2);
    expect(u3.body).toMatchObject({ version: 3, created: true, dropped: [] });
    // The same content again is no new version.
    const again = await g.update(g.alice, 'notes.txt', 'v3');
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ version: 3, created: false });

    const list = await g.call(g.bob, 'GET', '');
    const files = list.body.files as { name: string; version: number; fileId: string }[];
    expect(files).toHaveLength(1);
    expect(files[0]).toMatchObject({ name: 'notes.txt', version: 3, fileId: fakeManifest('v3').fileId });

    const versions = await g.call(g.bob, 'GET', '/notes.txt/versions');
    expect(versions.body).toMatchObject({ name: 'notes.txt', currentVersion: 3, keep: 5 });
    expect(
      (versions.body.versions as { version: number; author: string }[]).map((v) => [v.version, v.author]),
    ).toEqual([
      [3, 'ver-alice'],
      [2, 'ver-bob'],
      [1, 'ver-alice'],
    ]);
    // By file id too.
    expect((await g.call(g.bob, 'GET', `/${fakeManifest('v1').fileId}/versions`)).body.currentVersion).toBe(
      3,
    );

    const detail = await g.call(g.bob, 'GET', '/notes.txt');
    expect(detail.body).toMatchObject({ version: 3, fileId: fakeManifest('v3').fileId });
    const old = await g.call(g.bob, 'GET', '/notes.txt?version=1');
    expect(old.body).toMatchObject({ version: 1, fileId: fakeManifest('v1').fileId });
    const seeders = await g.call(g.bob, 'GET', '/notes.txt/seeders?version=2');
    expect(seeders.body.fileId).toBe(fakeManifest('v2').fileId);
    const ticket = await g.call(g.bob, 'POST', '/notes.txt/tickets?version=1', { peerId: randomPeerId() });
    expect(ticket.status).toBe(201);
    expect(ticket.body.fileId).toBe(fakeManifest('v1').fileId);
    const byId = await g.call(g.bob, 'POST', `/${fakeManifest('v2').fileId}/tickets`, {
      peerId: randomPeerId(),
    });
    expect(byId.body.fileId).toBe(fakeManifest('v2').fileId);

    expect(code(await g.call(g.bob, 'GET', '/notes.txt?version=4'))).toBe('VERSION_NOT_FOUND');
    expect(code(await g.call(g.bob, 'GET', `/${fakeManifest('v1').fileId}?version=2`))).toBe(
      'VERSION_NOT_FOUND',
    );
    // A first share under a taken name is still refused: updates add versions.
    expect(code(await g.share(g.bob, 'notes.txt', 'other'))).toBe('FILE_NAME_TAKEN');
    // Sharing an earlier version's bytes seeds that version.
    const reshare = await g.share(g.bob, 'notes.txt', 'v1');
    expect(reshare.body).toMatchObject({ version: 1, created: false });
  });

  it('refuses a stale ifVersion with VERSION_CONFLICT naming the current version, and changes nothing', async () => {
    const g = await groupOf('cas');
    await g.share(g.alice, 'plan.md', 'p1');
    expect((await g.update(g.alice, 'plan.md', 'p2', 1)).body.version).toBe(2);
    const stale = await g.update(g.bob, 'plan.md', 'p3', 1);
    expect(stale.status).toBe(409);
    expect(stale.body.error).toMatchObject({ code: 'VERSION_CONFLICT', details: { currentVersion: 2 } });
    expect(stale.body.error?.message).toMatch(/version 2/);
    const versions = await g.call(g.bob, 'GET', '/plan.md/versions');
    expect(versions.body.currentVersion).toBe(2);
    expect(versions.body.versions).toHaveLength(2);
    // The refused content was never listed.
    expect(code(await g.call(g.bob, 'GET', `/${fakeManifest('p3').fileId}`))).toBe('FILE_NOT_FOUND');

    // Of concurrent updates on one version, exactly one lands.
    const racers = await Promise.all(
      ['r1', 'r2', 'r3', 'r4'].map((seed) => g.update(g.alice, 'plan.md', seed, 2)),
    );
    expect(racers.filter((r) => r.status === 201)).toHaveLength(1);
    expect(racers.filter((r) => code(r) === 'VERSION_CONFLICT')).toHaveLength(3);
    // Content already listed as an earlier version, or under another name, is no new version.
    expect(code(await g.update(g.alice, 'plan.md', 'p1'))).toBe('VERSION_CONFLICT');
    await g.share(g.alice, 'other.md', 'o1');
    expect(code(await g.update(g.alice, 'plan.md', 'o1'))).toBe('FILE_NAME_TAKEN');
    expect(code(await g.update(g.alice, 'missing.md', 'm1'))).toBe('FILE_NOT_FOUND');
  });

  it('keeps the group’s last K versions: older ones are no longer listed, fetched or ticketed', async () => {
    const g = await groupOf('keep');
    await g.share(g.alice, 'log', 'k1');
    for (const seed of ['k2', 'k3', 'k4']) await g.update(g.alice, 'log', seed);
    const keepUrl = `/v1/groups/${g.group}/versions`;
    const notOwner = await fileTracker.api.call<Body>('POST', keepUrl, { token: g.alice, body: { keep: 2 } });
    expect(code(notOwner)).toBe('NOT_OWNER');
    const outsider = await fileTracker.api.call<Body>('POST', keepUrl, {
      token: g.outsider,
      body: { keep: 2 },
    });
    expect(code(outsider)).toBe('NOT_A_MEMBER');
    for (const keep of [0, -1, 1.5, '2', 1001]) {
      const bad = await fileTracker.api.call<Body>('POST', keepUrl, { token: g.owner, body: { keep } });
      expect(code(bad), String(keep)).toBe('BAD_REQUEST');
    }
    const session = await hello(g.bob);
    const set = await fileTracker.api.call<Body>('POST', keepUrl, { token: g.owner, body: { keep: 2 } });
    expect(set.body).toEqual({
      groupId: g.group,
      keep: 2,
      dropped: [fakeManifest('k1').fileId, fakeManifest('k2').fileId],
    });
    expect(await session.next('file_deleted')).toMatchObject({ groupId: g.group, name: 'log' });
    const versions = await g.call(g.alice, 'GET', '/log/versions');
    expect((versions.body.versions as { version: number }[]).map((v) => v.version)).toEqual([4, 3]);
    expect(code(await g.call(g.alice, 'GET', '/log?version=2'))).toBe('VERSION_NOT_FOUND');
    const dropped = fakeManifest('k1').fileId;
    expect(code(await g.call(g.alice, 'POST', `/${dropped}/tickets`, { peerId: randomPeerId() }))).toBe(
      'FILE_NOT_FOUND',
    );
    // The next update drops the oldest kept one; numbering goes on.
    const u5 = await g.update(g.alice, 'log', 'k5');
    expect(u5.body).toMatchObject({ version: 5, dropped: [fakeManifest('k3').fileId] });
    await session.close();
  });

  it('refuses malformed versions with BAD_REQUEST and outsiders with NOT_A_MEMBER', async () => {
    const g = await groupOf('badv');
    await g.share(g.alice, 'a.bin', 'a1');
    for (const ifVersion of [0, -1, 1.5, '1', null]) {
      const r = await g.call(g.alice, 'POST', '/a.bin/versions', {
        manifest: fakeManifest('a2').manifest,
        peerId: randomPeerId(),
        ifVersion,
      });
      expect(code(r), String(ifVersion)).toBe('BAD_REQUEST');
    }
    for (const q of ['0', '-1', '1.5', 'x', '01', '']) {
      expect(code(await g.call(g.alice, 'GET', `/a.bin?version=${q}`)), q).toBe('BAD_REQUEST');
      expect(code(await g.call(g.alice, 'GET', `/a.bin/seeders?version=${q}`)), q).toBe('BAD_REQUEST');
    }
    const extra = await g.call(g.alice, 'POST', '/a.bin/versions', {
      manifest: fakeManifest('a2').manifest,
      peerId: randomPeerId(),
      name: 'b',
    });
    expect(code(extra)).toBe('BAD_REQUEST');
    expect(code(await g.update(g.outsider, 'a.bin', 'a2'))).toBe('NOT_A_MEMBER');
    expect(code(await g.call(g.outsider, 'GET', '/a.bin/versions'))).toBe('NOT_A_MEMBER');
    expect(code(await g.call(g.outsider, 'POST', '/a.bin/delete'))).toBe('NOT_A_MEMBER');
    expect(code(await g.call(g.outsider, 'POST', '/a.bin/lock', {}))).toBe('NOT_A_MEMBER');
  });
});

describe('delete', () => {
  it('unlists every version at once, refuses tickets, pushes file_deleted, and frees the name', async () => {
    const g = await groupOf('del');
    await g.share(g.alice, 'deck.pdf', 'd1');
    await g.update(g.bob, 'deck.pdf', 'd2');
    const seeder = await hello(g.bob);
    const outsiderSession = await hello(g.outsider);

    // Authors of any version, or the owner: not other members.
    await g.share(g.bob, 'bobs.txt', 'b1');
    expect(code(await g.call(g.alice, 'POST', '/bobs.txt/delete'))).toBe('NOT_AUTHOR');

    const del = await g.call(g.bob, 'POST', '/deck.pdf/delete');
    expect(del.status).toBe(200);
    expect(del.body).toEqual({
      groupId: g.group,
      name: 'deck.pdf',
      fileIds: [fakeManifest('d1').fileId, fakeManifest('d2').fileId].sort(),
    });
    const pushed = await seeder.next('file_deleted');
    expect(pushed).toMatchObject({ groupId: g.group, name: 'deck.pdf' });
    expect([...(pushed as { fileIds: string[] }).fileIds].sort()).toEqual(
      [fakeManifest('d1').fileId, fakeManifest('d2').fileId].sort(),
    );
    const names = ((await g.call(g.alice, 'GET', '')).body.files as { name: string }[]).map((f) => f.name);
    expect(names).toEqual(['bobs.txt']);
    for (const seed of ['d1', 'd2']) {
      const t = await g.call(g.alice, 'POST', `/${fakeManifest(seed).fileId}/tickets`, {
        peerId: randomPeerId(),
      });
      expect(code(t)).toBe('FILE_NOT_FOUND');
    }
    expect(code(await g.call(g.alice, 'POST', '/deck.pdf/tickets', { peerId: randomPeerId() }))).toBe(
      'FILE_NOT_FOUND',
    );
    expect(code(await g.call(g.alice, 'POST', '/deck.pdf/delete'))).toBe('FILE_NOT_FOUND');

    // A session that says hello later hears of it; a non-member's never does.
    const late = await hello(g.alice);
    expect(await late.next('file_deleted')).toMatchObject({ groupId: g.group, name: 'deck.pdf' });
    await expect(outsiderSession.next('file_deleted', 300)).rejects.toThrow(/no file_deleted/);

    // The owner may delete anyone's; the name can be shared again, as version 1.
    expect((await g.call(g.owner, 'POST', '/bobs.txt/delete')).status).toBe(200);
    const fresh = await g.share(g.alice, 'deck.pdf', 'd2');
    expect(fresh.body).toMatchObject({ version: 1, created: true });
    // Listed again: no longer replayed as deleted.
    const later = await hello(g.alice);
    const replayed: unknown[] = [];
    for (;;) {
      const m = await later.next('file_deleted', 300).catch(() => undefined);
      if (m === undefined) break;
      replayed.push(...(m as { fileIds: string[] }).fileIds);
    }
    expect(replayed).not.toContain(fakeManifest('d2').fileId);
    for (const s of [seeder, outsiderSession, late, later]) await s.close();
  });
});

describe('locks', () => {
  it('keeps other users’ updates and deletes out until unlock, and lets the holder write', async () => {
    const g = await groupOf('lock');
    await g.share(g.alice, 'spec.md', 's1');
    const lock = await g.call(g.alice, 'POST', '/spec.md/lock', {});
    expect(lock.status).toBe(200);
    expect(lock.body).toMatchObject({ groupId: g.group, name: 'spec.md', holder: 'lock-alice' });
    const expiresAt = lock.body.expiresAt as number;
    expect(expiresAt - Date.now()).toBeGreaterThan(290_000);
    expect(expiresAt - Date.now()).toBeLessThanOrEqual(300_000);

    for (const r of [
      await g.update(g.bob, 'spec.md', 's2'),
      await g.call(g.owner, 'POST', '/spec.md/delete'),
      await g.call(g.bob, 'POST', '/spec.md/lock', {}),
      await g.call(g.bob, 'POST', '/spec.md/unlock'),
    ]) {
      expect(r.status).toBe(423);
      expect(r.body.error).toMatchObject({
        code: 'FILE_LOCKED',
        details: { holder: 'lock-alice', expiresAt },
      });
      expect(r.body.error?.message).toMatch(/lock-alice/);
    }
    const listed = (await g.call(g.bob, 'GET', '')).body.files as { lock?: unknown }[];
    expect(listed[0]!.lock).toEqual({ holder: 'lock-alice', expiresAt });
    expect((await g.call(g.bob, 'GET', '/spec.md/versions')).body.lock).toMatchObject({
      holder: 'lock-alice',
    });
    expect((await g.update(g.alice, 'spec.md', 's2', 1)).body.version).toBe(2);
    // Renewed by its holder.
    const renewed = await g.call(g.alice, 'POST', '/spec.md/lock', { ttlSeconds: 600 });
    expect(renewed.body.expiresAt as number).toBeGreaterThan(expiresAt);

    expect((await g.call(g.alice, 'POST', '/spec.md/unlock')).body).toEqual({
      groupId: g.group,
      name: 'spec.md',
      released: true,
    });
    expect((await g.call(g.alice, 'POST', '/spec.md/unlock')).body.released).toBe(false);
    expect((await g.update(g.bob, 'spec.md', 's3', 2)).body.version).toBe(3);
    // The owner may break a lock (unlock), though not write through it.
    await g.call(g.bob, 'POST', '/spec.md/lock', {});
    expect((await g.call(g.owner, 'POST', '/spec.md/unlock')).body.released).toBe(true);
    expect((await g.call(g.owner, 'POST', '/spec.md/delete')).status).toBe(200);
  });

  it('ends at its TTL', async () => {
    const g = await groupOf('ttl');
    await g.share(g.alice, 'f', 't1');
    // 3 s: long enough for the next call to meet it on a loaded machine.
    await g.call(g.alice, 'POST', '/f/lock', { ttlSeconds: 3 });
    expect(code(await g.update(g.bob, 'f', 't2'))).toBe('FILE_LOCKED');
    await until(
      'the lock to end at its TTL',
      async () => (await g.update(g.bob, 'f', 't2')).status === 201,
      10_000,
    );
    expect((await g.call(g.bob, 'GET', '/f/versions')).body.lock).toBeUndefined();
  });

  it('ends with its holder’s peer’s session, long before its TTL, when that peer stops answering', async () => {
    const g = await groupOf('dead');
    await g.share(g.alice, 'f', 'x1');
    // The holder's peer answers pings until it "dies" (stops answering, as a frozen or killed one does).
    const holder = await openSession(fileTracker.tracker.url, g.alice, { autoPong: false });
    let alive = true;
    holder.ws.on('ping', () => {
      if (alive) holder.ws.pong();
    });
    const peerId = randomPeerId();
    holder.raw({ type: 'hello', v: 1, peerId, addresses: [], seeding: [] });
    await holder.next('welcome');
    const lock = await g.call(g.alice, 'POST', '/f/lock', { peerId });
    expect(lock.body).toMatchObject({ holder: 'dead-alice', peerId });
    expect(code(await g.update(g.bob, 'f', 'x2'))).toBe('FILE_LOCKED');
    // The holder's peer stops answering pings: the tracker cuts its session, and the lock goes with it.
    alive = false;
    // Within 15 s, where its TTL is DEFAULT_LOCK_TTL_SECONDS (300 s): it went with the session
    // (no wall-clock bound tighter than that: this is no benchmark).
    expect((lock.body.expiresAt as number) - Date.now()).toBeGreaterThan(60_000);
    await until(
      'the lock to end with its holder',
      async () => (await g.update(g.bob, 'f', 'x2')).status === 201,
      15_000,
    );
    await holder.closed;

    // A lock bound to a peer needs that peer connected, as the caller's.
    const stranger = await g.call(g.alice, 'POST', '/f/lock', { peerId: randomPeerId() });
    expect(code(stranger)).toBe('NOT_FOUND');
  });

  it('refuses malformed TTLs and bodies with BAD_REQUEST', async () => {
    const g = await groupOf('badl');
    await g.share(g.alice, 'f', 'b1');
    for (const ttlSeconds of [0, -5, 2.5, '60', 86_401]) {
      expect(code(await g.call(g.alice, 'POST', '/f/lock', { ttlSeconds })), String(ttlSeconds)).toBe(
        'BAD_REQUEST',
      );
    }
    expect(code(await g.call(g.alice, 'POST', '/f/lock', { peerId: 'short' }))).toBe('BAD_REQUEST');
    expect(code(await g.call(g.alice, 'POST', '/f/lock', { holder: 'x' }))).toBe('BAD_REQUEST');
    expect(code(await g.call(g.alice, 'POST', '/nope/lock', {}))).toBe('FILE_NOT_FOUND');
    expect((await g.call(g.bob, 'GET', '/f/versions')).body.lock).toBeUndefined();
  });
});
