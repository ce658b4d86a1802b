import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { callDaemon } from '../../src/peer/control/client.js';
import { coterie, exited, randomFile, stop, until } from '../helpers/cli-harness.js';
import { cliSwarm } from '../helpers/cli-swarm.js';

// The seed's whole story through the real `coterie` binary: a tracker and four peers as processes.

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

type Name = 'alice' | 'bob' | 'carol' | 'dave';
interface DownloadRow {
  fileName: string;
  state: string;
  doneBytes: number;
  size: number;
  dest: string;
  error: string | null;
}

describe('coterie end to end', { timeout: 60_000 }, () => {
  const swarm = cliSwarm<Name>('coterie-e2e-');
  const { root, dir, as, procs: peers } = swarm;
  let trackerUrl = '';
  const small = join(root, 'files', 'notes.bin');
  const big = join(root, 'files', 'movie.bin');
  const SMALL_BYTES = 3 * 1024 * 1024 + 123;
  const BIG_BYTES = 16 * 1024 * 1024;

  const startTracker = async () => {
    const port = Number(new URL(trackerUrl).port);
    await swarm.startTracker(['--heartbeat-interval-ms', '500', '--heartbeat-timeout-ms', '500'], port);
  };
  // bob and carol cap their uploads so a download lasts long enough to interrupt: 16 MiB at
  // 1 MiB/s each leaves seconds between "10% done" and the end, for the CLI calls in between
  // even on a loaded machine.
  const startPeer = (n: Name) =>
    swarm.startPeer(n, n === 'bob' || n === 'carol' ? ['--upload-limit-kib', '1024'] : []);
  const json = async (n: Name, ...args: string[]) => {
    const r = await as(n, '--json', ...args);
    if (r.code !== 0) throw new Error(`${args.join(' ')} failed: ${r.err}`);
    return JSON.parse(r.out) as Record<string, unknown>;
  };
  // Polling goes straight to the control API: a process per poll would load the machine for nothing.
  const downloads = (n: Name) => swarm.downloads<DownloadRow>(n);
  const expectError = async (r: Promise<{ code: number; err: string }>, code: string, text?: string) => {
    const res = await r;
    expect(res.code, res.err).not.toBe(0);
    expect(res.err.trim().split('\n')).toHaveLength(1);
    expect(res.err).toContain(`[${code}]`);
    if (text !== undefined) expect(res.err).toContain(text);
  };
  const sameBytes = (a: string, b: string) => expect(readFileSync(a).equals(readFileSync(b))).toBe(true);
  const connected = async (n: Name) =>
    ((await callDaemon(dir(n), 'status', [])) as { tracker: string | null }).tracker !== null;

  beforeAll(async () => {
    trackerUrl = `http://127.0.0.1:${await freePort()}`;
    await randomFile(small, SMALL_BYTES);
    await randomFile(big, BIG_BYTES);
    await startTracker();
    await Promise.all((['alice', 'bob', 'carol', 'dave'] as const).map(startPeer));
  }, 60_000);

  it('accounts: create_user (password from stdin), duplicate user, wrong password, login', async () => {
    const created = await coterie(['--data-dir', dir('alice'), 'create_user', 'alice', '-'], {
      input: 'alice-password\n',
    });
    expect(created.code, created.err).toBe(0);
    expect(created.out).toContain("created user 'alice'");
    for (const n of ['bob', 'carol', 'dave'] as const)
      expect((await as(n, 'create_user', n, `${n}-password`)).code).toBe(0);
    await expectError(
      as('bob', 'create_user', 'alice', 'whatever-pw'),
      'USER_EXISTS',
      "'alice' exists already",
    );
    await expectError(as('bob', 'login', 'bob', 'not-his-password'), 'BAD_CREDENTIALS');
    await expectError(as('bob', 'list_groups'), 'NOT_LOGGED_IN', 'login');
    for (const n of ['alice', 'bob', 'carol', 'dave'] as const) {
      const r = await as(n, 'login', n, `${n}-password`);
      expect(r.code, r.err).toBe(0);
      expect(r.out).toContain(`logged in as '${n}'`);
    }
  });

  it('groups: create, join, owner-only accept, members-only listing, advice in errors', async () => {
    expect((await as('alice', 'create_group', 'films')).code).toBe(0);
    await expectError(as('bob', 'create_group', 'films'), 'GROUP_EXISTS');
    for (const n of ['bob', 'carol', 'dave'] as const) {
      const r = await as(n, 'join_group', 'films');
      expect(r.out).toContain("its owner 'alice' must accept");
    }
    const reqs = await as('alice', 'list_requests', 'films');
    expect(reqs.out.split('\n').filter(Boolean).sort()).toEqual(['bob', 'carol', 'dave']);
    await expectError(
      as('bob', 'accept_request', 'films', 'carol'),
      'NOT_OWNER',
      "only the owner of group 'films' ('alice')",
    );
    await expectError(as('bob', 'list_requests', 'films'), 'NOT_OWNER');
    await expectError(
      as('dave', 'list_files', 'films'),
      'NOT_A_MEMBER',
      "not a member of group 'films': ask its owner 'alice' to accept your join_group request",
    );
    await expectError(
      as('dave', 'download_file', 'films', 'notes.bin', join(root, 'dl')),
      'NOT_A_MEMBER',
      "ask its owner 'alice'",
    );
    for (const n of ['bob', 'carol', 'dave'] as const)
      expect((await as('alice', 'accept_request', 'films', n)).code).toBe(0);
    await expectError(as('alice', 'decline_request', 'films', 'bob'), 'REQUEST_NOT_FOUND');
    const members = await as('dave', 'list_members', 'films');
    expect(members.out).toContain('alice (owner)');
    expect(members.out).toContain('dave');
    const groups = await json('carol', 'list_groups');
    expect(groups.groups).toMatchObject([
      { groupId: 'films', owner: 'alice', memberCount: 4, standing: 'member' },
    ]);
    // a throwaway group shows leave_group
    expect((await as('carol', 'create_group', 'tmp')).code).toBe(0);
    expect((await as('carol', 'leave_group', 'tmp')).out).toContain("left 'tmp'");
  });

  it('files: path checks, upload_file, list_files, missing file, download --wait byte for byte', async () => {
    await expectError(as('alice', 'upload_file', join(root, 'nope.bin'), 'films'), 'PATH_INVALID');
    // A directory is a folder share (test/integration/folder-shares.test.ts); a device is neither.
    await expectError(as('alice', 'upload_file', '/dev/null', 'films'), 'PATH_INVALID', 'not a regular file');
    await expectError(as('alice', 'upload_file', 'relative/missing.bin', 'films'), 'PATH_INVALID');
    const up = await json('alice', 'upload_file', small, 'films');
    expect(up).toMatchObject({ fileName: 'notes.bin', size: SMALL_BYTES, groupId: 'films' });
    const files = await as('bob', 'list_files', 'films');
    expect(files.out).toContain('notes.bin');
    await expectError(
      as('dave', 'download_file', 'films', 'nothing.bin', join(root, 'dl')),
      'FILE_NOT_FOUND',
      'list_files films',
    );
    await expectError(
      as('dave', 'download_file', 'films', 'notes.bin', join(root, 'no', 'such', 'dir', 'x')),
      'PATH_INVALID',
    );
    mkdirSync(join(root, 'dl'));
    const r = await as('dave', 'download_file', 'films', 'notes.bin', join(root, 'dl'), '--wait');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain("downloaded 'notes.bin'");
    sameBytes(small, join(root, 'dl', 'notes.bin'));
    await expectError(
      as('dave', 'download_file', 'films', 'notes.bin', join(root, 'dl')),
      'DESTINATION_EXISTS',
    );
    const shown = await as('dave', 'show_downloads');
    expect(shown.out).toContain('completed:');
    expect((await downloads('dave'))[0]).toMatchObject({
      fileName: 'notes.bin',
      state: 'completed',
      doneBytes: SMALL_BYTES,
    });
  });

  it('a seeder appearing mid-download joins it; a seeder stopped mid-download: it finishes from the others', async () => {
    for (const n of ['bob', 'carol'] as const) writeFileSync(join(dir(n), 'movie.bin'), readFileSync(big));
    expect((await as('bob', 'upload_file', join(dir('bob'), 'movie.bin'), 'films')).code).toBe(0);
    const dest = join(root, 'dl', 'movie-1.bin');
    const started = await as('dave', 'download_file', 'films', 'movie.bin', dest);
    expect(started.code, started.err).toBe(0);
    expect(started.out).toContain('show_downloads follows it');
    // carol shares it once dave's download runs: the tracker's seeder event brings her in.
    expect((await as('carol', 'upload_file', join(dir('carol'), 'movie.bin'), 'films')).code).toBe(0);
    await until('10% downloaded', async () => {
      const d = (await downloads('dave')).find((x) => x.dest === dest);
      return d !== undefined && d.doneBytes > BIG_BYTES * 0.1;
    });
    const ongoing = await as('dave', 'show_downloads');
    expect(ongoing.out).toContain('ongoing:');
    expect((await as('bob', 'quit')).code).toBe(0);
    // Bob's daemon may well be gone before the CLI that told it to quit is.
    expect(await exited(peers.get('bob')!.child)).toBe(0);
    await until(
      'download complete',
      async () => (await downloads('dave')).find((x) => x.dest === dest)?.state === 'completed',
      30_000,
    );
    sameBytes(big, dest);
    const done = (await downloads('dave')).find((x) => x.dest === dest) as DownloadRow & {
      contributions: { userId: string; pieces: number }[];
    };
    expect(done.contributions.find((c) => c.userId === 'carol')?.pieces).toBeGreaterThan(0);
    await startPeer('bob');
  });

  it("the downloader's daemon restarted mid-download resumes it", async () => {
    const dest = join(root, 'dl', 'movie-2.bin');
    expect((await as('dave', 'download_file', 'films', 'movie.bin', dest)).code).toBe(0);
    await until('15% downloaded', async () => {
      const d = (await downloads('dave')).find((x) => x.dest === dest);
      return d !== undefined && d.doneBytes > BIG_BYTES * 0.15;
    });
    expect(await stop(peers.get('dave')!.child)).toBe(0);
    await startPeer('dave');
    const after = (await downloads('dave')).find((x) => x.dest === dest)!;
    expect(['active', 'paused']).toContain(after.state);
    await until(
      'resumed download complete',
      async () => (await downloads('dave')).find((x) => x.dest === dest)?.state === 'completed',
      30_000,
    );
    sameBytes(big, dest);
    expect(readFileSync(join(root, 'dave.log'), 'utf8')).toMatch(/serving on[\s\S]*serving on/);
  });

  it('the tracker restarted: peers reconnect, re-announce, and a download succeeds', async () => {
    await stop(peers.get('tracker')!.child);
    await startTracker();
    await until('everyone reconnected', async () => {
      for (const n of ['alice', 'bob', 'carol', 'dave'] as const) if (!(await connected(n))) return false;
      return true;
    });
    const dest = join(root, 'dl', 'notes-2.bin');
    const r = await as('carol', 'download_file', 'films', 'notes.bin', dest, '--wait');
    expect(r.code, r.err).toBe(0);
    sameBytes(small, dest);
    const shown = await downloads('carol');
    expect(shown.at(-1)).toMatchObject({ state: 'completed' });
  });

  it('stop_share, a failed --wait download with its reason, logout', async () => {
    // notes.bin is seeded by alice and by carol and dave, who completed it: stop_share in one group, then everywhere.
    expect((await as('alice', 'stop_share', 'films', 'notes.bin')).out).toContain(
      "stopped sharing 'notes.bin' in 'films'",
    );
    await expectError(as('alice', 'stop_share', 'films', 'notes.bin'), 'NOT_SHARING');
    for (const n of ['dave', 'carol'] as const) expect((await as(n, 'stop_share', 'notes.bin')).code).toBe(0);
    await expectError(
      as('bob', 'download_file', 'films', 'notes.bin', join(root, 'dl', 'gone.bin')),
      'FILE_NOT_FOUND',
    );
    // A file still listed whose only sharer is offline: with --no-wait the download fails at once with its reason.
    const extra = join(dir('alice'), 'extra.bin');
    await randomFile(extra, 256 * 1024);
    expect((await as('alice', 'upload_file', extra, 'films')).code).toBe(0);
    expect((await as('alice', 'quit')).code).toBe(0);
    expect(await exited(peers.get('alice')!.child)).toBe(0);
    const dest = join(root, 'dl', 'extra.bin');
    await expectError(
      as('bob', 'download_file', 'films', 'extra.bin', dest, '--wait', '--no-wait'),
      'NO_SEEDERS',
    );
    const failed = (await downloads('bob')).find((x) => x.dest === dest);
    expect(failed?.state).toBe('failed');
    expect(failed?.error).toContain('seeder');
    expect((await as('bob', 'show_downloads')).out).toContain('failed:');
    expect((await as('bob', 'logout')).code).toBe(0);
    await expectError(as('bob', 'list_groups'), 'NOT_LOGGED_IN');
  });
});

describe('coterie demo', () => {
  it('runs the main story and exits 0', async () => {
    const r = await coterie(['demo'], { env: { COTERIE_DEMO_SIZE_MIB: '8' } });
    expect(r.code, r.err + r.out).toBe(0);
    expect(r.out).toContain('identical');
    expect(r.out).toMatch(/alice|bob|carol/);
  }, 60_000);
});
