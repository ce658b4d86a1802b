import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { randomFile, until } from '../helpers/cli-harness.js';
import { cliSwarm } from '../helpers/cli-swarm.js';

// Tickets bind for their lifetime only, and membership is revocable, through the real binary:
// a tracker signing 3-second tickets, alice seeding with her uploads capped so that a download
// lasts several ticket lifetimes, bob and carol downloading.

type Name = 'alice' | 'bob' | 'carol';
interface DownloadRow {
  fileName: string;
  state: string;
  doneBytes: number;
  dest: string;
  error: string | null;
}

const TICKET_SECONDS = 3;
// 4 MiB at 256 KiB/s: at least 16 s from alice, five ticket lifetimes, on any machine.
const FILE_BYTES = 4 * 1024 * 1024;
const UPLOAD_KIB = 256;

describe('ticket lifetime and revocation', { timeout: 120_000 }, () => {
  const swarm = cliSwarm<Name>('coterie-tickets-');
  const { root, dir, as, ok, downloads } = swarm;
  const file = (i: number) => join(root, 'files', `f${i}.bin`);

  const row = async (n: Name, dest: string) => (await downloads<DownloadRow>(n)).find((d) => d.dest === dest);
  const renewals = (n: Name) =>
    readFileSync(join(dir(n), 'peer.log'), 'utf8')
      .split('\n')
      .filter((l) => l.includes('download ticket renewed')).length;
  const admit = async (n: Name) => {
    await ok(n, 'join_group', 'films');
    await ok('alice', 'accept_request', 'films', n);
  };

  beforeAll(async () => {
    for (const i of [0, 1, 2]) randomFile(file(i), FILE_BYTES);
    await swarm.startTracker(['--ticket-ttl-seconds', String(TICKET_SECONDS)]);
    for (const n of ['alice', 'bob', 'carol'] as const) {
      await swarm.startPeer(n, n === 'alice' ? ['--upload-limit-kib', String(UPLOAD_KIB)] : []);
      await ok(n, 'create_user', n, `${n}-password`);
      await ok(n, 'login', n, `${n}-password`);
    }
    await ok('alice', 'create_group', 'films');
    await admit('bob');
    await admit('carol');
    for (const i of [0, 1, 2]) await ok('alice', 'upload_file', file(i), 'films');
  }, 60_000);

  it('renews the tickets of a long download over its connections, and completes it', async () => {
    const dest = join(root, 'carol-f0.bin');
    const before = renewals('carol');
    const r = await ok('carol', 'download_file', 'films', 'f0.bin', dest, '--wait');
    expect(r.code).toBe(0);
    expect(readFileSync(dest).equals(readFileSync(file(0)))).toBe(true);
    // Several 3 s lifetimes passed: each was renewed over the open connection, none expired.
    expect(renewals('carol') - before).toBeGreaterThanOrEqual(2);
  });

  it('stops a removed member’s download while another member’s goes on and completes', async () => {
    const bobDest = join(root, 'bob-f1.bin');
    const carolDest = join(root, 'carol-f1.bin');
    await ok('bob', 'download_file', 'films', 'f1.bin', bobDest);
    await ok('carol', 'download_file', 'films', 'f1.bin', carolDest);
    await until('bob has pieces', async () => ((await row('bob', bobDest))?.doneBytes ?? 0) > 0, 30_000);

    // Owner only; the owner cannot remove themself and is told what to do instead.
    const notOwner = await as('carol', 'remove_member', 'films', 'bob');
    expect(notOwner.code).not.toBe(0);
    expect(notOwner.err).toContain('[NOT_OWNER]');
    const self = await as('alice', 'remove_member', 'films', 'alice');
    expect(self.code).not.toBe(0);
    expect(self.err).toContain('leave_group films');
    expect(self.err).toContain('[BAD_REQUEST]');

    const removed = await ok('alice', 'remove_member', 'films', 'bob');
    expect(removed.out).toContain("removed 'bob' from 'films'");
    const t0 = Date.now();
    // Within a second on a quiet machine; the bound is generous for a loaded one.
    await until('bob’s download stops', async () => (await row('bob', bobDest))?.state === 'failed', 10_000);
    expect(Date.now() - t0).toBeLessThan(10_000);
    const failed = await row('bob', bobDest);
    expect(failed?.error ?? '').toMatch(/not a member|revoked/);
    expect((await row('carol', carolDest))?.state).not.toBe('failed');
    await until(
      'carol’s download completes',
      async () => (await row('carol', carolDest))?.state === 'completed',
      60_000,
    );
    expect(readFileSync(carolDest).equals(readFileSync(file(1)))).toBe(true);
  });

  it('stops the download of a member who leaves; one accepted again downloads with fresh tickets', async () => {
    // Bob was removed above: accepted again at once, his new tickets work.
    await admit('bob');
    const bobDest = join(root, 'bob-f2.bin');
    const carolDest = join(root, 'carol-f2.bin');
    await ok('bob', 'download_file', 'films', 'f2.bin', bobDest);
    await ok('carol', 'download_file', 'films', 'f2.bin', carolDest);
    await until('bob has pieces', async () => ((await row('bob', bobDest))?.doneBytes ?? 0) > 0, 30_000);
    await ok('bob', 'leave_group', 'films');
    await until('bob’s download stops', async () => (await row('bob', bobDest))?.state === 'failed', 10_000);
    expect((await row('bob', bobDest))?.error ?? '').toMatch(/not a member|revoked/);
    await until(
      'carol’s download completes',
      async () => (await row('carol', carolDest))?.state === 'completed',
      60_000,
    );
    expect(readFileSync(carolDest).equals(readFileSync(file(2)))).toBe(true);
  });
});
