import { describe, expect, it } from 'vitest';
import { MAX_TICKET_TTL_SECONDS, verifyTicket } from '../../src/protocol/tickets.js';
import { fakeManifest, openSession, randomPeerId, trackerPerFile } from '../helpers/tracker.js';

// Membership is revocable: an owner removes a member (remove_member), and removal and leave
// revoke the user's tickets for the group: recorded, and pushed to the group's seeders.

const fileTracker = trackerPerFile();
type Err = { error: { code: string; message: string } };

async function group(prefix: string) {
  const api = fileTracker.api;
  const owner = await api.user(`${prefix}-owner`);
  const member = await api.user(`${prefix}-member`);
  const other = await api.user(`${prefix}-other`);
  const g = `${prefix}-g`;
  await api.call('POST', '/v1/groups', { token: owner, body: { groupId: g } });
  for (const [token, name] of [
    [member, 'member'],
    [other, 'other'],
  ] as const) {
    await api.call('POST', `/v1/groups/${g}/join`, { token });
    await api.call('POST', `/v1/groups/${g}/requests/${prefix}-${name}/accept`, { token: owner });
  }
  return { owner, member, other, g };
}

const remove = (g: string, user: string, token: string, headers: Record<string, string> = {}) =>
  fileTracker.api.call<Err & { removed?: boolean }>('POST', `/v1/groups/${g}/members/${user}/remove`, {
    token,
    headers,
  });

async function seederSession(token: string) {
  const s = await openSession(fileTracker.tracker.url, token);
  s.raw({ type: 'hello', v: 1, peerId: randomPeerId(), addresses: [], seeding: [] });
  await s.next('welcome');
  return s;
}

describe('remove_member', () => {
  it('is for the owner only, not on themself, and says what is wrong', async () => {
    const { owner, member, g } = await group('rm1');
    const notOwner = await remove(g, 'rm1-other', member);
    expect(notOwner.status).toBe(403);
    expect(notOwner.body.error.code).toBe('NOT_OWNER');
    const self = await remove(g, 'rm1-owner', owner);
    expect(self.status).toBe(400);
    expect(self.body.error.code).toBe('BAD_REQUEST');
    expect(self.body.error.message).toContain(`leave_group ${g}`);
    const nobody = await remove(g, 'rm1-nobody', owner);
    expect(nobody.body.error.code).toBe('USER_NOT_FOUND');
    const stranger = await fileTracker.api.user('rm1-stranger');
    expect(stranger).toBeTruthy();
    const notIn = await remove(g, 'rm1-stranger', owner);
    expect(notIn.status).toBe(403);
    expect(notIn.body.error.code).toBe('NOT_A_MEMBER');
    const noGroup = await remove('rm1-nogroup', 'rm1-member', owner);
    expect(noGroup.body.error.code).toBe('GROUP_NOT_FOUND');
  });

  it('removes the member: their shares stop being listed and they get no more tickets', async () => {
    const { owner, member, other, g } = await group('rm2');
    const f = fakeManifest('rm2');
    const share = await fileTracker.api.call('POST', `/v1/groups/${g}/files`, {
      token: member,
      body: { name: 'theirs.bin', manifest: f.manifest, peerId: randomPeerId() },
    });
    expect(share.status).toBe(201);
    const removed = await remove(g, 'rm2-member', owner);
    expect(removed.status).toBe(200);
    expect(removed.body).toEqual({ groupId: g, userId: 'rm2-member', removed: true });
    const files = await fileTracker.api.call<{ files: unknown[] }>('GET', `/v1/groups/${g}/files`, {
      token: other,
    });
    expect(files.body.files).toEqual([]);
    const members = await fileTracker.api.call<{ members: { userId: string }[] }>(
      'GET',
      `/v1/groups/${g}/members`,
      { token: owner },
    );
    expect(members.body.members.map((m) => m.userId)).toEqual(['rm2-owner', 'rm2-other']);
    const ticket = await fileTracker.api.call<Err>('POST', `/v1/groups/${g}/files/${f.fileId}/tickets`, {
      token: member,
      body: { peerId: randomPeerId() },
    });
    expect(ticket.body.error.code).toBe('NOT_A_MEMBER');
  });

  it('answers a retry with the same idempotency key as the first time', async () => {
    const { owner, g } = await group('rm3');
    const key = { 'idempotency-key': 'rm3-remove-0001' };
    const first = await remove(g, 'rm3-member', owner, key);
    const again = await remove(g, 'rm3-member', owner, key);
    expect(first.status).toBe(200);
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    expect((await remove(g, 'rm3-member', owner)).body.error.code).toBe('NOT_A_MEMBER');
  });
});

describe('ticket revocation', () => {
  it("pushes tickets_revoked to the group's members on removal and on leave, not to others", async () => {
    const { owner, member, other, g } = await group('rv1');
    const outsider = await fileTracker.api.user('rv1-outsider');
    const seeder = await seederSession(other);
    const ownerSession = await seederSession(owner);
    const away = await seederSession(outsider);
    try {
      const t0 = Math.floor(Date.now() / 1000);
      expect((await remove(g, 'rv1-member', owner)).status).toBe(200);
      for (const s of [seeder, ownerSession]) {
        const e = await s.next('tickets_revoked');
        expect(e).toMatchObject({ type: 'tickets_revoked', groupId: g, userId: 'rv1-member' });
        // Every ticket issued up to the removal is covered (iat is whole seconds).
        expect((e as { before: number }).before).toBeGreaterThan(t0);
      }
      await fileTracker.api.call('POST', `/v1/groups/${g}/leave`, { token: other });
      expect(await ownerSession.next('tickets_revoked')).toMatchObject({ groupId: g, userId: 'rv1-other' });
      await expect(away.next('tickets_revoked', 500)).rejects.toThrow();
      expect(member).toBeTruthy();
    } finally {
      await Promise.all([seeder, ownerSession, away].map((s) => s.close()));
    }
  });

  it('tells a seeder that says hello later of the revocations it missed', async () => {
    const { owner, other, g } = await group('rv2');
    expect((await remove(g, 'rv2-member', owner)).status).toBe(200);
    const late = await seederSession(other);
    try {
      expect(await late.next('tickets_revoked')).toMatchObject({ groupId: g, userId: 'rv2-member' });
    } finally {
      await late.close();
    }
  });

  it('signs a member accepted again with tickets issued after the revocation', async () => {
    const { owner, member, g } = await group('rv3');
    const f = fakeManifest('rv3');
    await fileTracker.api.call('POST', `/v1/groups/${g}/files`, {
      token: owner,
      body: { name: 'f.bin', manifest: f.manifest, peerId: randomPeerId() },
    });
    const seeder = await seederSession(owner);
    try {
      await remove(g, 'rv3-member', owner);
      const { before } = (await seeder.next('tickets_revoked')) as { before: number };
      await fileTracker.api.call('POST', `/v1/groups/${g}/join`, { token: member });
      await fileTracker.api.call('POST', `/v1/groups/${g}/requests/rv3-member/accept`, { token: owner });
      // At once, within the removal's second most likely: the fresh ticket must not count as issued before it.
      const peerId = randomPeerId();
      const t = await fileTracker.api.call<{ ticket: string }>(
        'POST',
        `/v1/groups/${g}/files/${f.fileId}/tickets`,
        { token: member, body: { peerId } },
      );
      expect(t.status).toBe(201);
      const keys = await fileTracker.api.call<{ keys: never[] }>('GET', '/v1/cluster/keys');
      const claims = await verifyTicket(t.body.ticket, keys.body as never, { fileId: f.fileId, peerId });
      expect(claims.iat).toBeGreaterThanOrEqual(before);
    } finally {
      await seeder.close();
    }
  });
});

describe('ticket lifetime', () => {
  it('is 10 minutes by default and at most 60', async () => {
    const { owner, g } = await group('tl1');
    const f = fakeManifest('tl1');
    await fileTracker.api.call('POST', `/v1/groups/${g}/files`, {
      token: owner,
      body: { name: 'f.bin', manifest: f.manifest, peerId: randomPeerId() },
    });
    const ask = (body: Record<string, unknown>) =>
      fileTracker.api.call<{ ticket: string } & Err>('POST', `/v1/groups/${g}/files/${f.fileId}/tickets`, {
        token: owner,
        body: { peerId: randomPeerId(), ...body },
      });
    const keys = (await fileTracker.api.call<{ keys: never[] }>('GET', '/v1/cluster/keys')).body;
    const life = async (t: string) => {
      const c = await verifyTicket(t, keys as never);
      return c.exp - c.iat;
    };
    expect(await life((await ask({})).body.ticket)).toBe(600);
    expect(await life((await ask({ ttlMinutes: 60 })).body.ticket)).toBe(MAX_TICKET_TTL_SECONDS);
    const tooLong = await ask({ ttlMinutes: 61 });
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.error.code).toBe('BAD_REQUEST');
  });
});
