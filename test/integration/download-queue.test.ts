import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { DownloadView } from '../../src/protocol/control.js';
import { exited, type RunResult, randomFile, until } from '../helpers/cli-harness.js';
import { cliSwarm } from '../helpers/cli-swarm.js';

// Downloads that wait, pause and cancel (issue 17), through the real binary: bob asks for a file
// whose only seeder is offline and the download waits ('waiting for seeders'), across a restart
// of his daemon, until alice comes back and the tracker's push starts it; --no-wait answers
// NO_SEEDERS at once. Then, from a seeder capped at 1 MiB/s: pause (nothing more arrives, and it
// stays paused across a restart), resume to a byte-identical end, cancel (the part and resume
// files gone), and coded refusals for a download that does not exist or already ended.

type Name = 'alice' | 'bob';
const MiB = 1024 * 1024;
/** alice's upload cap: the 6 MiB file takes about 6 s, long enough to pause and cancel midway. */
const SEEDER_ARGS = ['--upload-limit-kib', '1024'];
/** bob's selection rule weights: show_downloads <download> reports them in its analysis. */
const BOB_ARGS = ['--alpha', '0.2', '--beta', '0.6'];

describe('downloads that wait, pause and cancel', { timeout: 120_000 }, () => {
  const swarm = cliSwarm<Name>('coterie-queue-');
  const { root, as, ok } = swarm;
  const film = join(root, 'film.bin');
  const slow = join(root, 'slow.bin');

  const expectError = (r: RunResult, code: string) => {
    expect(r.code, r.err).not.toBe(0);
    expect(r.err).toContain(`[${code}]`);
  };
  const sameBytes = (a: string, b: string) => expect(readFileSync(a).equals(readFileSync(b))).toBe(true);
  const row = async (id: number) => (await swarm.downloads<DownloadView>('bob')).find((d) => d.id === id)!;
  /** Restarts a peer's daemon (`quit`, then `coterie peer` on the same data directory). */
  const restart = async (n: Name, args: string[] = []) => {
    await ok(n, 'quit');
    expect(await exited(swarm.procs.get(n)!.child)).toBe(0);
    await swarm.startPeer(n, args);
  };
  const downloadId = async (...args: string[]) =>
    (JSON.parse((await ok('bob', 'download_file', ...args, '--json')).out) as DownloadView).id;

  beforeAll(async () => {
    await randomFile(film, 2 * MiB);
    await randomFile(slow, 6 * MiB);
    await swarm.startTracker();
    for (const n of ['alice', 'bob'] as const) {
      await swarm.startPeer(n, n === 'alice' ? SEEDER_ARGS : BOB_ARGS);
      await ok(n, 'create_user', n, `${n}-password`);
      await ok(n, 'login', n, `${n}-password`);
    }
    await ok('alice', 'create_group', 'films');
    await ok('bob', 'join_group', 'films');
    await ok('alice', 'accept_request', 'films', 'bob');
    await ok('alice', 'upload_file', film, 'films');
    await ok('alice', 'upload_file', slow, 'films');
  }, 120_000);

  it('waits for a seeder across a restart, then completes byte-identical when one appears', async () => {
    await ok('alice', 'quit');
    expect(await exited(swarm.procs.get('alice')!.child)).toBe(0);
    const dest = join(root, 'bob', 'film.bin');
    const said = await ok('bob', 'download_file', 'films', 'film.bin', dest);
    expect(said.out).toContain('waits for seeders');
    const id = (await swarm.downloads<DownloadView>('bob')).at(-1)!.id;
    expect(await row(id)).toMatchObject({ state: 'waiting', doneBytes: 0 });
    expect((await ok('bob', 'show_downloads')).out).toMatch(/film\.bin .*waiting for seeders/);
    // --no-wait: today's immediate NO_SEEDERS, and the record says why.
    expectError(
      await as('bob', 'download_file', 'films', 'film.bin', join(root, 'bob', 'now.bin'), '--no-wait'),
      'NO_SEEDERS',
    );
    expect((await swarm.downloads<DownloadView>('bob')).at(-1)).toMatchObject({ state: 'failed' });

    await restart('bob', BOB_ARGS);
    await until('bob back online', async () => (await row(id)) !== undefined);
    // Still queued after the restart, and nothing polls it into a failure.
    await new Promise((r) => setTimeout(r, 1500));
    expect(await row(id)).toMatchObject({ state: 'waiting' });

    await swarm.startPeer('alice', SEEDER_ARGS);
    await until('the queued download completes', async () => (await row(id)).state === 'completed', 30_000);
    sameBytes(film, dest);
    // After it ended: the seed's chunk-assignment analysis under bob's α and β.
    const { detail } = JSON.parse((await ok('bob', 'show_downloads', String(id), '--json')).out) as {
      detail: { analysis: Record<string, unknown> };
    };
    // One seeder served every piece: 2 MiB in pieces of the tracker's size.
    const n = detail.analysis.fetchedPieces as number;
    expect(n).toBeGreaterThan(1);
    expect(detail.analysis).toMatchObject({
      alpha: 0.2,
      beta: 0.6,
      resumedPieces: 0,
      max: n,
      min: n,
      mean: n,
    });
    expect(detail.analysis.byPieces).toEqual([{ pieces: n, peers: 1 }]);
    expect((await ok('bob', 'show_downloads', String(id))).out).toContain('assignment (α=0.20, β=0.60)');
    expectError(await as('bob', 'show_downloads', '9999'), 'DOWNLOAD_NOT_FOUND');
  });

  it('pauses (nothing more arrives, across a restart), resumes to a byte-identical end', async () => {
    const dest = join(root, 'bob', 'slow.bin');
    const id = await downloadId('films', 'slow.bin', dest);
    await until('a quarter arrived', async () => (await row(id)).doneBytes >= 1.5 * MiB, 20_000);
    // While it runs: alice's state and rate, and no piece missing from everyone online.
    const running = JSON.parse((await ok('bob', 'show_downloads', 'slow.bin', '--json')).out) as {
      detail: {
        peers: { userId: string; state: string; connection: string }[];
        unreachable: { count: number };
      };
    };
    expect(running.detail.peers).toEqual([expect.objectContaining({ userId: 'alice', connection: 'ready' })]);
    expect(running.detail.unreachable.count).toBe(0);
    const paused = JSON.parse((await ok('bob', 'pause_download', String(id), '--json')).out) as DownloadView;
    expect(paused.state).toBe('paused');
    expect(existsSync(`${dest}.part`)).toBe(true);
    const at = (await row(id)).doneBytes;
    expect((await ok('bob', 'show_downloads')).out).toMatch(/slow\.bin .*paused/);
    await restart('bob', BOB_ARGS);
    await new Promise((r) => setTimeout(r, 1500));
    expect(await row(id)).toMatchObject({ state: 'paused', doneBytes: at });
    expect(at).toBeLessThan(6 * MiB);

    expect((await ok('bob', 'resume_download', 'slow.bin')).out).toContain(
      `download #${id} of 'slow.bin' is active`,
    );
    await until('the resumed download completes', async () => (await row(id)).state === 'completed', 30_000);
    sameBytes(slow, dest);
    // Nothing left to pause, resume or cancel; no such download at all.
    expectError(await as('bob', 'pause_download', String(id)), 'BAD_REQUEST');
    expectError(await as('bob', 'cancel_download', String(id)), 'BAD_REQUEST');
    expectError(await as('bob', 'pause_download', '9999'), 'DOWNLOAD_NOT_FOUND');
    expectError(await as('bob', 'resume_download', 'no-such.bin'), 'DOWNLOAD_NOT_FOUND');
    expectError(await as('bob', 'cancel_download', 'a/b'), 'USAGE');
  });

  it('cancels: the part file and the resume state are removed', async () => {
    const dest = join(root, 'bob', 'cancelled.bin');
    const id = await downloadId('films', 'slow.bin', dest);
    await until('some of it arrived', async () => (await row(id)).doneBytes >= MiB, 20_000);
    await until('the resume file is written', () => existsSync(`${dest}.part.resume`), 10_000);
    const out = (await ok('bob', 'cancel_download', String(id))).out;
    expect(out).toContain('part file and resume state are removed');
    expect(await row(id)).toMatchObject({ state: 'cancelled' });
    for (const f of [dest, `${dest}.part`, `${dest}.part.resume`]) expect(existsSync(f), f).toBe(false);
    await new Promise((r) => setTimeout(r, 500));
    expect(existsSync(`${dest}.part`)).toBe(false);
    expect((await ok('bob', 'show_downloads')).out).toMatch(new RegExp(`#${id} +slow\\.bin .*cancelled`));
    // The destination is free again: a new download may write there.
    const again = await downloadId('films', 'film.bin', dest);
    await until('the new download completes', async () => (await row(again)).state === 'completed', 30_000);
    sameBytes(film, dest);
  });
});
