import { createServer, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { fakeManifest, openSession, randomPeerId, trackerPerFile } from '../helpers/tracker.js';
import { until } from '../helpers/wait.js';

// Short heartbeats so that expiry is observable quickly: ping every 200 ms, dead after 300 ms without pong.
const fileTracker = trackerPerFile(['--heartbeat-interval-ms', '200', '--heartbeat-timeout-ms', '300']);

async function sharedFile(prefix: string) {
  const owner = await fileTracker.api.user(`${prefix}-owner`);
  const member = await fileTracker.api.user(`${prefix}-member`);
  const group = `${prefix}-g`;
  await fileTracker.api.call('POST', '/v1/groups', { token: owner, body: { groupId: group } });
  await fileTracker.api.call('POST', `/v1/groups/${group}/join`, { token: member });
  await fileTracker.api.call('POST', `/v1/groups/${group}/requests/${prefix}-member/accept`, {
    token: owner,
  });
  const f = fakeManifest(prefix);
  const peerId = randomPeerId();
  await fileTracker.api.call('POST', `/v1/groups/${group}/files`, {
    token: owner,
    body: { name: `${prefix}.bin`, manifest: f.manifest, peerId },
  });
  const seeders = async () =>
    (
      await fileTracker.api.call<{ seeders: { peerId: string }[] }>(
        'GET',
        `/v1/groups/${group}/files/${f.fileId}`,
        {
          token: member,
        },
      )
    ).body.seeders.map((s) => s.peerId);
  return { owner, member, group, fileId: f.fileId, peerId, seeders };
}

describe('presence session', () => {
  it('refuses an upgrade without a valid token', async () => {
    await expect(openSession(fileTracker.tracker.url, undefined)).rejects.toThrow(/401/);
    await expect(openSession(fileTracker.tracker.url, 'forged')).rejects.toThrow(/401/);
    // A plain GET without the upgrade is a coded 400, not an empty answer.
    const plain = await fileTracker.api.call<{ error: { code: string } }>('GET', '/v1/session', {
      token: await fileTracker.api.user('plain'),
    });
    expect(plain.status).toBe(400);
    expect(plain.body.error.code).toBe('BAD_REQUEST');
  });

  it('welcomes a hello, lists the peer as seeder, and drops it at once on close', async () => {
    const x = await sharedFile('close');
    const s = await openSession(fileTracker.tracker.url, x.owner);
    s.raw({
      type: 'hello',
      v: 1,
      id: 1,
      peerId: x.peerId,
      addresses: ['127.0.0.1:7001'],
      seeding: [x.fileId],
    });
    const w = await s.next('welcome');
    expect(w).toMatchObject({ id: 1, peerId: x.peerId, userId: 'close-owner', heartbeatIntervalMs: 200 });
    expect(await x.seeders()).toEqual([x.peerId]);
    s.raw({ type: 'unannounce', id: 'u', files: [x.fileId] });
    expect(await s.next('ack')).toEqual({ type: 'ack', id: 'u' });
    expect(await x.seeders()).toEqual([]);
    s.raw({ type: 'announce', id: 'a', files: [x.fileId] });
    await s.next('ack');
    expect(await x.seeders()).toEqual([x.peerId]);
    await s.close();
    await until('the seeder list to empty', async () => (await x.seeders()).length === 0, 2000, 50);
  });

  it('welcomes a peer without waiting for its dial-back, and tells the verdict after', async () => {
    // The peer's advertised address accepts the tracker's dial-back and never answers its TLS
    // hello: the check would hold a welcome for its 10 s handshake timeout.
    const held: Socket[] = [];
    const silent = createServer((socket) => held.push(socket));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const port = (silent.address() as { port: number }).port;
      const s = await openSession(fileTracker.tracker.url, await fileTracker.api.user('dialback'));
      s.raw({ type: 'hello', v: 1, peerId: randomPeerId(), addresses: [`127.0.0.1:${port}`], seeding: [] });
      const welcome = await s.next('welcome');
      expect(welcome).not.toHaveProperty('reachability');
      await until('the dial-back reached the peer', () => held.length > 0);
      // The check fails when the connection does: the verdict follows on the session.
      for (const socket of held) socket.destroy();
      expect(await s.next('reachability')).toMatchObject({ reachable: 'nat' });
      await s.close();
    } finally {
      silent.close();
    }
  });

  it('answers invalid frames with error frames and keeps the session', async () => {
    const token = await fileTracker.api.user('frames');
    const s = await openSession(fileTracker.tracker.url, token);
    s.raw('not json');
    expect(await s.next('error')).toMatchObject({ code: 'PROTOCOL_ERROR' });
    s.raw({ type: 'announce', id: 7, files: [] });
    expect(await s.next('error')).toMatchObject({ id: 7, code: 'PROTOCOL_ERROR', message: /hello/ });
    s.raw({ type: 'no-such-type', id: 'x' });
    expect(await s.next('error')).toMatchObject({ code: 'PROTOCOL_ERROR', id: 'x' });
    s.raw({ type: 'hello', v: 1, peerId: 'short', addresses: [], seeding: [] });
    expect(await s.next('error')).toMatchObject({ code: 'PROTOCOL_ERROR' });
    s.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    expect(await s.next('error')).toMatchObject({ code: 'PROTOCOL_ERROR', message: /binary/ });
    s.raw(JSON.stringify({ type: 'ping', pad: 'x'.repeat(1_200_000) }));
    expect(await s.next('error')).toMatchObject({ code: 'FRAME_TOO_LARGE' });
    s.raw({ type: 'ping', id: 9 });
    expect(await s.next('pong')).toEqual({ type: 'pong', id: 9 });
    s.raw({ type: 'hello', v: 99, peerId: randomPeerId(), addresses: [], seeding: [] });
    expect(await s.next('error')).toMatchObject({ code: 'PROTOCOL_ERROR', message: /version/ });
    expect((await s.closed).code).toBe(4400);
  });

  it('declares a peer dead after a missed heartbeat and stops listing it', async () => {
    const x = await sharedFile('hb');
    const watcher = await openSession(fileTracker.tracker.url, x.member);
    watcher.raw({ type: 'hello', v: 1, peerId: randomPeerId(), addresses: [], seeding: [] });
    await watcher.next('welcome');
    watcher.raw({ type: 'watch', id: 'w', files: [x.fileId] });
    await watcher.next('ack');

    // This client never answers pings.
    const mute = await openSession(fileTracker.tracker.url, x.owner, { autoPong: false });
    mute.raw({ type: 'hello', v: 1, peerId: x.peerId, addresses: ['127.0.0.1:7002'], seeding: [x.fileId] });
    await mute.next('welcome');
    expect(await watcher.next('seeder_appeared')).toMatchObject({ fileId: x.fileId, peerId: x.peerId });
    expect(await x.seeders()).toEqual([x.peerId]);

    expect(await watcher.next('seeder_left', 3000)).toMatchObject({ fileId: x.fileId, peerId: x.peerId });
    expect(await x.seeders()).toEqual([]);
    await mute.closed;
    // The answering watcher survived several heartbeats.
    watcher.raw({ type: 'ping', id: 1 });
    await watcher.next('pong');
    await watcher.close();
  });

  it('tells a new watcher of the seeders already there (one that came between its lookup and its watch)', async () => {
    const x = await sharedFile('late-watch');
    // The seeder registers first: a downloader that looked the file up just before saw none.
    const seeder = await openSession(fileTracker.tracker.url, x.owner);
    seeder.raw({ type: 'hello', v: 1, peerId: x.peerId, addresses: ['127.0.0.1:7003'], seeding: [x.fileId] });
    await seeder.next('welcome');
    const watcherPeer = randomPeerId();
    const watcher = await openSession(fileTracker.tracker.url, x.member);
    watcher.raw({ type: 'hello', v: 1, peerId: watcherPeer, addresses: [], seeding: [x.fileId] });
    await watcher.next('welcome');
    watcher.raw({ type: 'watch', id: 'w', files: [x.fileId] });
    // Only the other seeder, not the watcher itself (it seeds the file too).
    expect(await watcher.next('seeder_appeared')).toMatchObject({
      fileId: x.fileId,
      peerId: x.peerId,
      addresses: ['127.0.0.1:7003'],
    });
    await watcher.next('ack');
    watcher.raw({ type: 'ping', id: 2 });
    await watcher.next('pong');
    // Frames come in order: none for the watcher itself came before the pong.
    await expect(watcher.next('seeder_appeared', 0)).rejects.toThrow(/no seeder_appeared/);
    await watcher.close();
    await seeder.close();
  });

  it('pushes join requests to the owner and the decision to the requester', async () => {
    const owner = await fileTracker.api.user('push-owner');
    const asker = await fileTracker.api.user('push-asker');
    await fileTracker.api.call('POST', '/v1/groups', { token: owner, body: { groupId: 'push-g' } });
    const so = await openSession(fileTracker.tracker.url, owner);
    so.raw({ type: 'hello', v: 1, peerId: randomPeerId(), addresses: [], seeding: [] });
    await so.next('welcome');
    const sa = await openSession(fileTracker.tracker.url, asker);
    sa.raw({ type: 'hello', v: 1, peerId: randomPeerId(), addresses: [], seeding: [] });
    await sa.next('welcome');
    await fileTracker.api.call('POST', '/v1/groups/push-g/join', { token: asker });
    expect(await so.next('join_requested')).toMatchObject({ groupId: 'push-g', userId: 'push-asker' });
    await fileTracker.api.call('POST', '/v1/groups/push-g/requests/push-asker/accept', { token: owner });
    expect(await sa.next('join_accepted')).toMatchObject({ groupId: 'push-g', userId: 'push-asker' });
    await so.close();
    await sa.close();
  });

  it('refuses to watch files outside the user’s groups, replaces a duplicate peer, closes on logout', async () => {
    const x = await sharedFile('misc');
    const stranger = await fileTracker.api.user('misc-stranger');
    const s = await openSession(fileTracker.tracker.url, stranger);
    s.raw({ type: 'hello', v: 1, peerId: randomPeerId(), addresses: [], seeding: [] });
    await s.next('welcome');
    s.raw({ type: 'watch', id: 'w', files: [x.fileId] });
    expect(await s.next('error')).toMatchObject({ id: 'w', code: 'FILE_NOT_FOUND' });
    await s.close();

    const first = await openSession(fileTracker.tracker.url, x.owner);
    first.raw({ type: 'hello', v: 1, peerId: x.peerId, addresses: ['127.0.0.1:1'], seeding: [x.fileId] });
    await first.next('welcome');
    const second = await openSession(fileTracker.tracker.url, x.owner);
    second.raw({ type: 'hello', v: 1, peerId: x.peerId, addresses: ['127.0.0.1:2'], seeding: [x.fileId] });
    await second.next('welcome');
    expect((await first.closed).code).toBe(4409);
    expect(await x.seeders()).toEqual([x.peerId]);

    // Another user cannot take over a connected peer id.
    const thief = await openSession(fileTracker.tracker.url, x.member);
    thief.raw({ type: 'hello', v: 1, id: 't', peerId: x.peerId, addresses: [], seeding: [] });
    expect(await thief.next('error')).toMatchObject({ id: 't', code: 'PEER_MISMATCH' });
    await thief.close();

    await fileTracker.api.call('POST', '/v1/logout', { token: x.owner });
    expect((await second.closed).code).toBe(4401);
    await until('the seeder list to empty', async () => (await x.seeders()).length === 0, 2000, 50);
  });

  it("pushes a seeder's new addresses once per peer to the sessions watching its files (peer_moved)", async () => {
    const x = await sharedFile('moved');
    // The seeder seeds two files of the group; the watcher watches both, a third member neither.
    const second = fakeManifest('moved-2');
    await fileTracker.api.call('POST', `/v1/groups/${x.group}/files`, {
      token: x.owner,
      body: { name: 'moved-2.bin', manifest: second.manifest, peerId: x.peerId },
    });
    const watcher = await openSession(fileTracker.tracker.url, x.member);
    watcher.raw({ type: 'hello', v: 1, peerId: randomPeerId(), addresses: [], seeding: [] });
    await watcher.next('welcome');
    watcher.raw({ type: 'watch', id: 'w', files: [x.fileId, second.fileId] });
    await watcher.next('ack');
    const idle = await openSession(fileTracker.tracker.url, x.member);
    idle.raw({ type: 'hello', v: 1, peerId: randomPeerId(), addresses: [], seeding: [] });
    await idle.next('welcome');
    const seeder = await openSession(fileTracker.tracker.url, x.owner);
    seeder.raw({
      type: 'hello',
      v: 1,
      peerId: x.peerId,
      addresses: ['127.0.0.1:7101'],
      seeding: [x.fileId, second.fileId],
    });
    await seeder.next('welcome');
    const setAddresses = async (addresses: string[]) => {
      seeder.raw({ type: 'addresses', id: 'a', addresses });
      await seeder.next('ack');
    };
    const moved = (addresses: string[]) => ({ type: 'peer_moved', peerId: x.peerId, addresses });

    await setAddresses(['127.0.0.1:7102', 'udp://198.18.0.9:4000']);
    expect(await watcher.next('peer_moved')).toMatchObject(
      moved(['127.0.0.1:7102', 'udp://198.18.0.9:4000']),
    );
    // The same addresses again are no news; the next change is (after the 1 s gap between a
    // peer's events). Pushes to a session keep their order, so had the first change gone out
    // once per seeded file, its copy would come before this one.
    await setAddresses(['127.0.0.1:7102', 'udp://198.18.0.9:4000']);
    await setAddresses(['127.0.0.1:7103']);
    expect(await watcher.next('peer_moved')).toMatchObject(moved(['127.0.0.1:7103']));
    // A session watching none of its files heard nothing: its own ping's pong comes first.
    idle.raw({ type: 'ping', id: 1 });
    expect(await idle.next(['peer_moved', 'pong'])).toEqual({ type: 'pong', id: 1 });
    await Promise.all([watcher.close(), idle.close(), seeder.close()]);
  });
});
