import { describe, expect, it } from 'vitest';
import { verifyTicket } from '../../src/protocol/tickets.js';
import {
  fakeManifest,
  greet,
  headersOnly,
  openSession,
  randomPeerId,
  trackerPerFile,
} from '../helpers/tracker.js';

// One tracker for the whole file: each test uses its own users and groups.
const fileTracker = trackerPerFile();

type Err = { error: { code: string; message: string } };

describe('users and sessions', () => {
  it('creates, logs in, answers whoami, logs out and refuses the revoked token', async () => {
    const c = await fileTracker.api.call('POST', '/v1/users', {
      body: { userId: 'ann', password: 'password-ann' },
    });
    expect(c.status).toBe(201);
    expect(c.body).toMatchObject({ userId: 'ann' });
    const dup = await fileTracker.api.call<Err>('POST', '/v1/users', {
      body: { userId: 'ann', password: 'password-ann' },
    });
    expect(dup.status).toBe(409);
    expect(dup.body.error.code).toBe('USER_EXISTS');

    const bad = await fileTracker.api.call<Err>('POST', '/v1/login', {
      body: { userId: 'ann', password: 'wrong-password' },
    });
    expect(bad.status).toBe(401);
    expect(bad.body.error.code).toBe('BAD_CREDENTIALS');
    const nobody = await fileTracker.api.call<Err>('POST', '/v1/login', {
      body: { userId: 'nobody', password: 'whatever1' },
    });
    expect(nobody.body.error.code).toBe('BAD_CREDENTIALS');

    const l = await fileTracker.api.call<{ token: string; expiresAt: number }>('POST', '/v1/login', {
      body: { userId: 'ann', password: 'password-ann' },
    });
    expect(l.status).toBe(200);
    expect(l.body.token.length).toBeGreaterThan(30);
    expect(l.body.expiresAt).toBeGreaterThan(Date.now());
    const me = await fileTracker.api.call('GET', '/v1/whoami', { token: l.body.token });
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ userId: 'ann' });

    const out = await fileTracker.api.call('POST', '/v1/logout', { token: l.body.token });
    expect(out.status).toBe(200);
    const after = await fileTracker.api.call<Err>('GET', '/v1/whoami', { token: l.body.token });
    expect(after.status).toBe(401);
    expect(after.body.error.code).toBe('UNAUTHENTICATED');
    const none = await fileTracker.api.call<Err>('GET', '/v1/whoami');
    expect(none.status).toBe(401);
    const garbage = await fileTracker.api.call<Err>('GET', '/v1/whoami', { token: 'not-a-token' });
    expect(garbage.body.error.code).toBe('UNAUTHENTICATED');
  });

  it('rate-limits failed logins per user', async () => {
    await fileTracker.api.user('rita');
    let last = 0;
    for (let i = 0; i < 7; i++) {
      last = (
        await fileTracker.api.call('POST', '/v1/login', { body: { userId: 'rita', password: 'wrong-wrong' } })
      ).status;
    }
    expect(last).toBe(429);
    const blocked = await fileTracker.api.call<Err>('POST', '/v1/login', {
      body: { userId: 'rita', password: 'correct horse battery' },
    });
    expect(blocked.status).toBe(429);
    expect(blocked.body.error.code).toBe('RATE_LIMITED');
    expect(blocked.headers['retry-after']).toBeDefined();
  });

  it('rejects bad names and short passwords with clear 4xx', async () => {
    const bad = await fileTracker.api.call<Err>('POST', '/v1/users', {
      body: { userId: 'Bad Name', password: 'password1' },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('INVALID_NAME');
    const short = await fileTracker.api.call<Err>('POST', '/v1/users', {
      body: { userId: 'shorty', password: 'x' },
    });
    expect(short.status).toBe(400);
    expect(short.body.error.code).toBe('BAD_REQUEST');
    const extra = await fileTracker.api.call<Err>('POST', '/v1/users', {
      body: { userId: 'extra', password: 'password1', admin: true },
    });
    expect(extra.body.error.code).toBe('BAD_REQUEST');
    expect(extra.body.error.message).toContain('admin');
  });
});

describe('groups', () => {
  it('create, list with standing, join (idempotent), accept, decline, members, leave', async () => {
    const alice = await fileTracker.api.user('g-alice');
    const bob = await fileTracker.api.user('g-bob');
    const carol = await fileTracker.api.user('g-carol');

    const g = await fileTracker.api.call('POST', '/v1/groups', { token: alice, body: { groupId: 'films' } });
    expect(g.status).toBe(201);
    expect(g.body).toMatchObject({ groupId: 'films', owner: 'g-alice', memberCount: 1, standing: 'member' });
    const dup = await fileTracker.api.call<Err>('POST', '/v1/groups', {
      token: bob,
      body: { groupId: 'films' },
    });
    expect(dup.status).toBe(409);
    expect(dup.body.error.code).toBe('GROUP_EXISTS');

    const j1 = await fileTracker.api.call('POST', '/v1/groups/films/join', { token: bob });
    expect(j1.status).toBe(202);
    expect(j1.body).toMatchObject({ standing: 'pending', owner: 'g-alice' });
    const j2 = await fileTracker.api.call('POST', '/v1/groups/films/join', { token: bob });
    expect(j2.status).toBe(202);
    await fileTracker.api.call('POST', '/v1/groups/films/join', { token: carol });

    const listBob = await fileTracker.api.call<{
      groups: { groupId: string; standing: string; memberCount: number }[];
    }>('GET', '/v1/groups', { token: bob });
    expect(listBob.body.groups.find((x) => x.groupId === 'films')).toMatchObject({
      standing: 'pending',
      memberCount: 1,
    });

    const membersDenied = await fileTracker.api.call<Err>('GET', '/v1/groups/films/members', { token: bob });
    expect(membersDenied.status).toBe(403);
    expect(membersDenied.body.error.code).toBe('NOT_A_MEMBER');
    expect(membersDenied.body.error.message).toContain("ask its owner 'g-alice'");

    const reqsDenied = await fileTracker.api.call<Err>('GET', '/v1/groups/films/requests', { token: bob });
    expect(reqsDenied.body.error.code).toBe('NOT_OWNER');
    const acceptDenied = await fileTracker.api.call<Err>('POST', '/v1/groups/films/requests/g-carol/accept', {
      token: bob,
    });
    expect(acceptDenied.status).toBe(403);
    expect(acceptDenied.body.error.code).toBe('NOT_OWNER');

    const reqs = await fileTracker.api.call<{ requests: { userId: string }[] }>(
      'GET',
      '/v1/groups/films/requests',
      {
        token: alice,
      },
    );
    expect(reqs.body.requests.map((r) => r.userId)).toEqual(['g-bob', 'g-carol']);

    const acc = await fileTracker.api.call('POST', '/v1/groups/films/requests/g-bob/accept', {
      token: alice,
    });
    expect(acc.status).toBe(200);
    expect(acc.body).toMatchObject({ decision: 'accepted', userId: 'g-bob' });
    const again = await fileTracker.api.call<Err>('POST', '/v1/groups/films/requests/g-bob/accept', {
      token: alice,
    });
    expect(again.body.error.code).toBe('REQUEST_NOT_FOUND');
    const dec = await fileTracker.api.call('POST', '/v1/groups/films/requests/g-carol/decline', {
      token: alice,
    });
    expect(dec.body).toMatchObject({ decision: 'declined' });

    const already = await fileTracker.api.call<Err>('POST', '/v1/groups/films/join', { token: bob });
    expect(already.status).toBe(409);
    expect(already.body.error.code).toBe('ALREADY_MEMBER');

    const members = await fileTracker.api.call<{ members: { userId: string; role: string }[] }>(
      'GET',
      '/v1/groups/films/members',
      { token: bob },
    );
    expect(members.body.members).toEqual([
      expect.objectContaining({ userId: 'g-alice', role: 'owner' }),
      expect.objectContaining({ userId: 'g-bob', role: 'member' }),
    ]);

    const listCarol = await fileTracker.api.call<{ groups: { groupId: string; standing: string }[] }>(
      'GET',
      '/v1/groups',
      {
        token: carol,
      },
    );
    expect(listCarol.body.groups.find((x) => x.groupId === 'films')?.standing).toBe('none');

    // The owner leaves: ownership passes to the longest-standing member; the last one out deletes the group.
    const leave = await fileTracker.api.call('POST', '/v1/groups/films/leave', { token: alice });
    expect(leave.body).toMatchObject({ owner: 'g-bob', deleted: false });
    const notMember = await fileTracker.api.call<Err>('POST', '/v1/groups/films/leave', { token: alice });
    expect(notMember.body.error.code).toBe('NOT_A_MEMBER');
    const last = await fileTracker.api.call('POST', '/v1/groups/films/leave', { token: bob });
    expect(last.body).toMatchObject({ owner: null, deleted: true });
    const gone = await fileTracker.api.call<Err>('POST', '/v1/groups/films/join', { token: carol });
    expect(gone.status).toBe(404);
    expect(gone.body.error.code).toBe('GROUP_NOT_FOUND');
  });
});

async function groupWithMember(prefix: string) {
  const owner = await fileTracker.api.user(`${prefix}-owner`);
  const member = await fileTracker.api.user(`${prefix}-member`);
  const outsider = await fileTracker.api.user(`${prefix}-out`);
  const group = `${prefix}-g`;
  await fileTracker.api.call('POST', '/v1/groups', { token: owner, body: { groupId: group } });
  await fileTracker.api.call('POST', `/v1/groups/${group}/join`, { token: member });
  await fileTracker.api.call('POST', `/v1/groups/${group}/requests/${prefix}-member/accept`, {
    token: owner,
  });
  return { owner, member, outsider, group };
}

describe('files', () => {
  it('shares, lists, gets, refuses name clashes, adds seeders, stops sharing', async () => {
    const { owner, member, outsider, group } = await groupWithMember('f');
    const a = fakeManifest('a');
    const b = fakeManifest('b');
    const ownerPeer = randomPeerId();
    const memberPeer = randomPeerId();

    const s1 = await fileTracker.api.call('POST', `/v1/groups/${group}/files`, {
      token: owner,
      body: { name: 'movie.mkv', manifest: a.manifest, peerId: ownerPeer },
    });
    expect(s1.status).toBe(201);
    expect(s1.body).toMatchObject({ fileId: a.fileId, name: 'movie.mkv', created: true });

    const clash = await fileTracker.api.call<Err>('POST', `/v1/groups/${group}/files`, {
      token: member,
      body: { name: 'movie.mkv', manifest: b.manifest, peerId: memberPeer },
    });
    expect(clash.status).toBe(409);
    expect(clash.body.error.code).toBe('FILE_NAME_TAKEN');

    const s2 = await fileTracker.api.call('POST', `/v1/groups/${group}/files`, {
      token: member,
      body: { name: 'movie.mkv', manifest: a.manifest, peerId: memberPeer },
    });
    expect(s2.status).toBe(200);
    expect(s2.body).toMatchObject({ fileId: a.fileId, created: false });

    const list = await fileTracker.api.call<{
      files: { fileId: string; sharers: string[]; seeders: number; size: number }[];
    }>('GET', `/v1/groups/${group}/files`, { token: member });
    expect(list.status).toBe(200);
    expect(list.body.files).toEqual([
      expect.objectContaining({
        fileId: a.fileId,
        sharers: ['f-member', 'f-owner'],
        seeders: 0,
        size: 300_000,
      }),
    ]);

    // Live seeders appear with a session that announces the file.
    const session = await openSession(fileTracker.tracker.url, owner);
    await greet(session, { peerId: ownerPeer, addresses: ['127.0.0.1:9000'], seeding: [a.fileId] });
    const detail = await fileTracker.api.call<{
      manifest: unknown;
      seeders: { peerId: string; addresses: string[]; score: number }[];
    }>('GET', `/v1/groups/${group}/files/${a.fileId}`, { token: member });
    expect(detail.status).toBe(200);
    expect(detail.body.manifest).toEqual(a.manifest);
    expect(detail.body.seeders).toEqual([
      { peerId: ownerPeer, userId: 'f-owner', addresses: ['127.0.0.1:9000'], score: 0.5, flagged: false },
    ]);
    const byName = await fileTracker.api.call<{ fileId: string }>(
      'GET',
      `/v1/groups/${group}/files/movie.mkv`,
      {
        token: member,
      },
    );
    expect(byName.body.fileId).toBe(a.fileId);
    await session.close();

    // Authorization: outsiders see nothing.
    for (const [method, path, body] of [
      ['GET', `/v1/groups/${group}/files`, undefined],
      ['GET', `/v1/groups/${group}/files/${a.fileId}`, undefined],
      ['GET', `/v1/groups/${group}/files/${a.fileId}/seeders`, undefined],
      ['POST', `/v1/groups/${group}/files/${a.fileId}/tickets`, { peerId: randomPeerId() }],
      ['POST', `/v1/groups/${group}/files`, { name: 'x', manifest: b.manifest, peerId: randomPeerId() }],
    ] as const) {
      const r = await fileTracker.api.call<Err>(method, path, { token: outsider, ...(body ? { body } : {}) });
      expect(r.status, `${method} ${path}`).toBe(403);
      expect(r.body.error.code).toBe('NOT_A_MEMBER');
    }

    const missing = await fileTracker.api.call<Err>('GET', `/v1/groups/${group}/files/nope.txt`, {
      token: member,
    });
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('FILE_NOT_FOUND');
    const noGroup = await fileTracker.api.call<Err>('GET', '/v1/groups/no-such-group/files', {
      token: member,
    });
    expect(noGroup.body.error.code).toBe('GROUP_NOT_FOUND');

    // Stop sharing: the file stays listed while someone still shares it.
    const notSharing = await fileTracker.api.call<Err>(
      'DELETE',
      `/v1/groups/${group}/files/${a.fileId}?peerId=${randomPeerId()}`,
      {
        token: owner,
      },
    );
    expect(notSharing.body.error.code).toBe('NOT_SHARING');
    const stop1 = await fileTracker.api.call('DELETE', `/v1/groups/${group}/files/${a.fileId}`, {
      token: owner,
    });
    expect(stop1.body).toMatchObject({ listed: true });
    const stop2 = await fileTracker.api.call(
      'DELETE',
      `/v1/groups/${group}/files/movie.mkv?peerId=${memberPeer}`,
      {
        token: member,
      },
    );
    expect(stop2.body).toMatchObject({ listed: false });
    const empty = await fileTracker.api.call<{ files: unknown[] }>('GET', `/v1/groups/${group}/files`, {
      token: owner,
    });
    expect(empty.body.files).toEqual([]);
  });

  it('refuses absurd manifests and names with 400', async () => {
    const { owner, group } = await groupWithMember('m');
    const peerId = randomPeerId();
    const good = fakeManifest('good').manifest;
    const cases: [unknown, string][] = [
      [{ ...good, size: -1 }, 'BAD_REQUEST'],
      [{ ...good, size: good.size * 10 }, 'INVALID_MANIFEST'],
      [{ ...good, pieceSize: 1000 }, 'INVALID_MANIFEST'],
      [{ ...good, pieces: good.pieces.map(() => 'Z'.repeat(64)) }, 'INVALID_MANIFEST'],
      [{ ...good, size: 1e15 }, 'BAD_REQUEST'],
      [{ ...good, version: 3 }, 'BAD_REQUEST'],
      // Version 2 is a folder, sent as a root of pages (tracker-manifest-pages.test.ts), never whole.
      [{ ...good, version: 2 }, 'BAD_REQUEST'],
      [{ ...good, version: 2, files: [{ path: 'x', size: good.size }] }, 'BAD_REQUEST'],
      [{ version: 1, size: 2 ** 40, pieceSize: 16384, pieces: [] }, 'INVALID_MANIFEST'],
    ];
    for (const [manifest, code] of cases) {
      const r = await fileTracker.api.call<Err>('POST', `/v1/groups/${group}/files`, {
        token: owner,
        body: { name: 'x.bin', manifest, peerId },
      });
      expect(r.status, JSON.stringify(manifest).slice(0, 80)).toBe(400);
      expect(r.body.error.code).toBe(code);
    }
    for (const name of ['', '../etc', 'a/b', 'x'.repeat(300), 'tab\there']) {
      const r = await fileTracker.api.call<Err>('POST', `/v1/groups/${group}/files`, {
        token: owner,
        body: { name, manifest: good, peerId },
      });
      expect(r.status, name).toBe(400);
    }
    // 10^9 pieces cannot even be sent: a body that large is refused from its Content-Length.
    const huge = await headersOnly(
      fileTracker.tracker.url,
      `POST /v1/groups/${group}/files HTTP/1.1\nHost: x\nAuthorization: Bearer ${owner}\nContent-Type: application/json\nContent-Length: 67000000000`,
    );
    expect(huge.status).toBe(413);
    expect(huge.text).toContain('BODY_TOO_LARGE');
  });
});

describe('tickets and keys', () => {
  it('signs tickets members can use and seeders verify with the published key', async () => {
    const { owner, member, outsider, group } = await groupWithMember('t');
    const f = fakeManifest('ticketed');
    await fileTracker.api.call('POST', `/v1/groups/${group}/files`, {
      token: owner,
      body: { name: 'doc.pdf', manifest: f.manifest, peerId: randomPeerId() },
    });
    const downloader = randomPeerId();
    const t = await fileTracker.api.call<{ ticket: string; expiresAt: number }>(
      'POST',
      `/v1/groups/${group}/files/doc.pdf/tickets`,
      { token: member, body: { peerId: downloader, ttlMinutes: 5 } },
    );
    expect(t.status).toBe(201);
    const keys = await fileTracker.api.call<{ keys: Record<string, string>[] }>('GET', '/v1/cluster/keys');
    expect(keys.status).toBe(200);
    expect(keys.body.keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' });
    expect(keys.body.keys[0]).not.toHaveProperty('d');
    const claims = await verifyTicket(t.body.ticket, keys.body as never, {
      fileId: f.fileId,
      peerId: downloader,
    });
    expect(claims).toMatchObject({ user: 't-member', group, file: f.fileId, peer: downloader });
    expect(claims.exp - claims.iat).toBe(300);

    const denied = await fileTracker.api.call<Err>('POST', `/v1/groups/${group}/files/doc.pdf/tickets`, {
      token: outsider,
      body: { peerId: downloader },
    });
    expect(denied.status).toBe(403);
    expect(denied.body.error.code).toBe('NOT_A_MEMBER');
    expect(denied.body).not.toHaveProperty('ticket');
    const noFile = await fileTracker.api.call<Err>(
      'POST',
      `/v1/groups/${group}/files/${'0'.repeat(64)}/tickets`,
      {
        token: member,
        body: { peerId: downloader },
      },
    );
    expect(noFile.body.error.code).toBe('FILE_NOT_FOUND');
  });
});

describe('peer quality', () => {
  it('scores reported peers and lists corrupt ones last, flagged', async () => {
    const { owner, member, group } = await groupWithMember('q');
    const f = fakeManifest('scored');
    const good = randomPeerId();
    const bad = randomPeerId();
    const goodToken = owner;
    const badUser = await fileTracker.api.user('q-bad');
    await fileTracker.api.call('POST', `/v1/groups/${group}/join`, { token: badUser });
    await fileTracker.api.call('POST', `/v1/groups/${group}/requests/q-bad/accept`, { token: owner });
    const sessions = [];
    for (const [token, peerId] of [
      [goodToken, good],
      [badUser, bad],
    ] as const) {
      await fileTracker.api.call('POST', `/v1/groups/${group}/files`, {
        token,
        body: { name: 'scored.bin', manifest: f.manifest, peerId },
      });
      const s = await openSession(fileTracker.tracker.url, token);
      s.raw({ type: 'hello', v: 1, peerId, addresses: ['127.0.0.1:1'], seeding: [f.fileId] });
      await s.next('welcome');
      sessions.push(s);
    }
    const r = await fileTracker.api.call<{
      accepted: number;
      scores: { peerId: string; flagged: boolean }[];
    }>('POST', '/v1/reports', {
      token: member,
      body: {
        reports: [
          { peerId: bad, bytes: 1000, seconds: 1, failedPieces: 0, corruptPieces: 2 },
          { peerId: bad, bytes: 0, seconds: 1, failedPieces: 1, corruptPieces: 2 },
          { peerId: good, bytes: 50_000_000, seconds: 2, failedPieces: 0, corruptPieces: 0 },
        ],
      },
    });
    expect(r.status).toBe(200);
    expect(r.body.accepted).toBe(3);
    expect(r.body.scores.find((s) => s.peerId === bad)?.flagged).toBe(true);
    const d = await fileTracker.api.call<{ seeders: { peerId: string; score: number; flagged: boolean }[] }>(
      'GET',
      `/v1/groups/${group}/files/${f.fileId}`,
      { token: member },
    );
    expect(d.body.seeders.map((s) => s.peerId)).toEqual([good, bad]);
    expect(d.body.seeders[0]!.score).toBeGreaterThan(0.5);
    expect(d.body.seeders[1]).toMatchObject({ flagged: true });
    expect(d.body.seeders[1]!.score).toBeLessThan(0.5);
    for (const s of sessions) await s.close();
    const empty = await fileTracker.api.call<Err>('POST', '/v1/reports', {
      token: member,
      body: { reports: [] },
    });
    expect(empty.status).toBe(400);
  });
});

describe('service endpoints and bad requests', () => {
  it('serves /healthz, /metrics and the OpenAPI document', async () => {
    const h = await fileTracker.api.call('GET', '/healthz');
    expect(h.status).toBe(200);
    expect(h.body).toMatchObject({ status: 'ok' });
    const m = await fileTracker.api.call('GET', '/metrics');
    expect(m.status).toBe(200);
    expect(m.text).toContain('coterie_http_requests_total');
    expect(m.text).toContain('coterie_sessions');
    expect(m.text).toContain('coterie_errors_total');
    const o = await fileTracker.api.call<{ openapi: string; paths: Record<string, unknown> }>(
      'GET',
      '/v1/openapi.json',
    );
    expect(o.status).toBe(200);
    expect(o.body.openapi).toMatch(/^3\./);
    expect(Object.keys(o.body.paths)).toEqual(
      expect.arrayContaining(['/v1/users', '/v1/login', '/v1/groups/{groupId}/files/{file}/tickets']),
    );
  });

  it('answers unknown routes, bad JSON, wrong content types and oversize bodies with coded 4xx', async () => {
    const token = await fileTracker.api.user('badreq');
    const nf = await fileTracker.api.call<Err>('GET', '/v1/nothing-here', { token });
    expect(nf.status).toBe(404);
    expect(nf.body.error.code).toBe('NOT_FOUND');
    const json = await fileTracker.api.call<Err>('POST', '/v1/groups', { token, raw: '{"groupId":' });
    expect(json.status).toBe(400);
    expect(json.body.error.code).toBe('BAD_REQUEST');
    const type = await fileTracker.api.call<Err>('POST', '/v1/groups', {
      token,
      raw: 'groupId=x',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(type.status).toBe(400);
    const big = await headersOnly(
      fileTracker.tracker.url,
      `POST /v1/groups HTTP/1.1\nHost: x\nAuthorization: Bearer ${token}\nContent-Type: application/json\nContent-Length: 200000`,
    );
    expect(big.status).toBe(413);
    expect(big.text).toContain('BODY_TOO_LARGE');
    const badName = await fileTracker.api.call<Err>('POST', '/v1/groups/NOT_OK/join', { token });
    expect(badName.status).toBe(400);
    expect(badName.body.error.code).toBe('INVALID_NAME');
    const noBody = await fileTracker.api.call<Err>('POST', '/v1/groups', { token });
    expect(noBody.status).toBe(400);
  });
});
