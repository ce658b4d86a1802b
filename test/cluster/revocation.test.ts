// A revocation made through one tracker of a cluster reaches a seeder connected to another:
// alice seeds from a real piece server whose session is on tracker B; bob, downloading from it
// with a ticket from tracker A, is removed from the group through tracker A. Her piece server
// hears tickets_revoked over LISTEN/NOTIFY and her session, drops bob's connection and refuses
// his old ticket; carol's connection goes on.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { JSONWebKeySet } from 'jose';
import { expect, it } from 'vitest';
import { createManifest } from '../../src/core/manifest.js';
import {
  createIdentity,
  FilePieceSource,
  type FramedConnection,
  type PeerIdentity,
  type PieceServer,
  startPieceServer,
} from '../../src/wire/index.js';
import { accepted, closedWith, helloSeeder } from '../helpers/piece-client.js';
import { client, openSession } from '../helpers/tracker.js';
import { until } from '../helpers/wait.js';
import { describeWithPg } from './pg.js';

describeWithPg(
  'ticket revocation across trackers',
  { prefix: 'coterie-revocation-', timeout: 60_000 },
  (cluster) => {
    const { root, trackers } = cluster;

    it('drops the removed member’s connection on a seeder of another tracker', async () => {
      const [a, b] = trackers.map((t) => client(t.url)) as [
        ReturnType<typeof client>,
        ReturnType<typeof client>,
      ];
      const alice = await a.user('xr-alice');
      const users = { bob: await a.user('xr-bob'), carol: await a.user('xr-carol') };
      await a.call('POST', '/v1/groups', { token: alice, body: { groupId: 'xr' } });
      for (const n of ['bob', 'carol'] as const) {
        await a.call('POST', '/v1/groups/xr/join', { token: users[n] });
        await a.call('POST', `/v1/groups/xr/requests/xr-${n}/accept`, { token: alice });
      }
      const path = join(root, 'shared.bin');
      writeFileSync(path, randomBytes(3 * 65536));
      const { manifest, fileId } = await createManifest(path);
      const seederId = await createIdentity();
      const share = await b.call('POST', '/v1/groups/xr/files', {
        token: alice,
        body: { name: 'shared.bin', manifest, peerId: seederId.peerId },
      });
      expect(share.status).toBe(201);

      // Alice's seeder: a piece server, and her session on tracker B passing revocations to it.
      const source = await FilePieceSource.open(path, manifest);
      const jwks = (await b.call<JSONWebKeySet>('GET', '/v1/cluster/keys')).body;
      const server: PieceServer = await startPieceServer({
        identity: seederId,
        sources: (id) => (id === fileId ? source : undefined),
        jwks,
        host: '127.0.0.1',
        // Carol asks for piece 0 outright: a spread seeder serves only the pieces it showed her.
        spread: false,
      });
      const session = await openSession(trackers[1]!.url, alice);
      const conns: FramedConnection[] = [];
      try {
        session.raw({ type: 'hello', v: 1, peerId: seederId.peerId, addresses: [], seeding: [fileId] });
        await session.next('welcome');
        let revoked = 0;
        const pump = (async () => {
          for (;;) {
            const e = await session.next('tickets_revoked', 30_000).catch(() => undefined);
            if (e === undefined || e.type !== 'tickets_revoked') return;
            revoked++;
            server.revokeTickets({ groupId: e.groupId, userId: e.userId, beforeSeconds: e.before });
          }
        })();

        const connect = async (who: PeerIdentity, token: string) => {
          const t = await a.call<{ ticket: string }>('POST', `/v1/groups/xr/files/${fileId}/tickets`, {
            token,
            body: { peerId: who.peerId },
          });
          expect(t.status).toBe(201);
          const c = await helloSeeder({
            port: server.port,
            identity: who,
            seederPeerId: seederId.peerId,
            fileId,
            ticket: t.body.ticket,
          });
          conns.push(c.conn);
          return { ...(await accepted(c)), ticket: t.body.ticket };
        };
        const [bobId, carolId] = await Promise.all([createIdentity(), createIdentity()]);
        const bob = await connect(bobId, users.bob);
        const carol = await connect(carolId, users.carol);

        // Removed through tracker A.
        const removed = await a.call('POST', '/v1/groups/xr/members/xr-bob/remove', { token: alice });
        expect(removed.status).toBe(200);
        expect(await closedWith(bob)).toBe('TICKET_REVOKED');
        expect(revoked).toBe(1);
        carol.conn.write({ type: 'request', piece: 0, offset: 0, length: 1000 });
        await until('carol is served', () => carol.frames.some((f) => f.type === 'piece'));

        // Bob's old ticket is refused on a new connection too.
        const again = await helloSeeder({
          port: server.port,
          identity: bobId,
          seederPeerId: seederId.peerId,
          fileId,
          ticket: bob.ticket,
        });
        conns.push(again.conn);
        expect(await closedWith(again)).toBe('TICKET_REVOKED');
        expect(again.frames).toHaveLength(1);
        await session.close();
        await pump;
      } finally {
        for (const c of conns) c.destroy();
        await session.close();
        await server.close();
        await source.close();
      }
    });
  },
);
