import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TrackerProcess } from '../../bench/lib/tracker-process.js';
import { callDaemon } from '../../src/peer/control/client.js';
import type { FileList, VersionList } from '../../src/protocol/api.js';
import type { DownloadView } from '../../src/protocol/control.js';
import { coterie, type Daemon, randomFile, startProcess, stop, until } from '../helpers/cli-harness.js';
import { tempDir } from '../helpers/temp-dir.js';
import { spawnTracker } from '../helpers/tracker.js';

// Issue 16's write, delete and lock of a file name, peer side, through the real `coterie`
// binary: a tracker and three peer daemons as processes. update_file shares new content as
// the next version (and --if-version is a compare-and-set), download_file --version N fetches
// a kept one, lock_file keeps others off until unlock_file or its holder's peer dies,
// delete_file takes the name away and ends its downloads, set_versions drops old versions.

type Name = 'alice' | 'bob' | 'carol';
const MiB = 1024 * 1024;

describe('file versions, locks and deletes between peers', { timeout: 90_000 }, () => {
  const root = tempDir('coterie-versions-');
  const dir = (n: Name) => join(root.path, n);
  const file = (name: string) => join(root.path, 'files', name);
  let tracker: TrackerProcess;
  const peers = new Map<Name, Daemon>();

  const startPeer = async (n: Name) => {
    // alice serves slowly, so a download of hers lasts long enough to delete the file under it.
    const limit = n === 'alice' ? ['--upload-limit-kib', '1024'] : [];
    peers.set(
      n,
      await startProcess(
        ['peer', '--data-dir', dir(n), '--tracker', tracker.url, '--no-shell', ...limit],
        /^peer [0-9a-f]{64} serving on/,
        join(root.path, `${n}.log`),
      ),
    );
  };
  const connected = (n: Name) =>
    until(`${n} connected`, async () => {
      const s = (await callDaemon(dir(n), 'status', [])) as { tracker: string | null };
      return s.tracker !== null;
    });
  const as = (n: Name, ...args: string[]) => coterie(['--data-dir', dir(n), ...args]);
  const ok = async (n: Name, ...args: string[]) => {
    const r = await as(n, ...args);
    expect(r.code, `${args.join(' ')}: ${r.err}`).toBe(0);
    return r.out;
  };
  const refused = async (n: Name, code: string, ...args: string[]) => {
    const r = await as(n, ...args);
    // One line naming the code; a malformed command line exits 2, any other refusal 1.
    expect(r.code, r.out).toBe(code === 'USAGE' ? 2 : 1);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toContain(`[${code}]`);
    return r.err;
  };
  const versions = (n: Name, name: string) =>
    callDaemon(dir(n), 'list_versions', ['docs', name]) as Promise<VersionList>;
  const listed = async (n: Name) => ((await callDaemon(dir(n), 'list_files', ['docs'])) as FileList).files;
  const versionGone = (version: string, dest: string) =>
    refused(
      'carol',
      'VERSION_NOT_FOUND',
      'download_file',
      'docs',
      'v1.bin',
      join(root.path, dest),
      '--version',
      version,
    );
  const sameBytes = (a: string, b: string) => expect(readFileSync(a).equals(readFileSync(b))).toBe(true);

  beforeAll(async () => {
    tracker = await spawnTracker(join(root.path, 'tracker'), [
      '--heartbeat-interval-ms',
      '500',
      '--heartbeat-timeout-ms',
      '500',
    ]);
    await Promise.all([
      randomFile(file('v1.bin'), 2 * MiB + 17),
      randomFile(file('v2.bin'), MiB + 5),
      randomFile(file('v3.bin'), 300_000),
      randomFile(file('v4.bin'), 200_000),
      randomFile(file('film.bin'), 8 * MiB),
    ]);
    for (const n of ['alice', 'bob', 'carol'] as const) {
      await startPeer(n);
      await callDaemon(dir(n), 'create_user', [n, `${n}-password`]);
      await callDaemon(dir(n), 'login', [n, `${n}-password`]);
      await connected(n);
    }
    await callDaemon(dir('alice'), 'create_group', ['docs']);
    for (const n of ['bob', 'carol'] as const) {
      await callDaemon(dir(n), 'join_group', ['docs']);
      await callDaemon(dir('alice'), 'accept_request', ['docs', n]);
    }
  }, 60_000);

  afterAll(async () => {
    await Promise.all([...peers.values()].map((p) => stop(p.child)));
    await tracker?.stop('SIGKILL');
    root.remove();
  }, 30_000);

  it('update_file makes version 2 under the same name; --version 1 and the current download byte-identical', async () => {
    await ok('alice', 'upload_file', file('v1.bin'), 'docs');
    // The content is shared under the name of the first upload: bob writes a new version of it.
    const renamed = await ok('bob', 'update_file', 'docs', 'v1.bin', file('v2.bin'), '--if-version', '1');
    expect(renamed).toContain("'v1.bin' in 'docs' is now version 2");
    const list = await versions('carol', 'v1.bin');
    expect(list.currentVersion).toBe(2);
    expect(list.versions.map((v) => [v.version, v.author, v.size])).toEqual([
      [2, 'bob', MiB + 5],
      [1, 'alice', 2 * MiB + 17],
    ]);
    expect((await listed('carol')).find((f) => f.name === 'v1.bin')?.version).toBe(2);
    expect(await ok('carol', 'list_files', 'docs')).toMatch(/v1\.bin\s+v2\s/);
    expect(await ok('carol', 'list_versions', 'docs', 'v1.bin')).toMatch(/v2 \*\s+1\.0 MiB\s+bob/);

    await ok(
      'carol',
      'download_file',
      'docs',
      'v1.bin',
      join(root.path, 'old.bin'),
      '--version',
      '1',
      '--wait',
    );
    await ok('carol', 'download_file', 'docs', 'v1.bin', join(root.path, 'new.bin'), '--wait');
    sameBytes(join(root.path, 'old.bin'), file('v1.bin'));
    sameBytes(join(root.path, 'new.bin'), file('v2.bin'));
  });

  it('--if-version on a stale version is VERSION_CONFLICT naming the current one, and changes nothing', async () => {
    const err = await refused(
      'carol',
      'VERSION_CONFLICT',
      'update_file',
      'docs',
      'v1.bin',
      file('v3.bin'),
      '--if-version',
      '1',
    );
    expect(err).toContain('is at version 2, not 1');
    expect((await versions('carol', 'v1.bin')).currentVersion).toBe(2);
  });

  it('malformed numbers and durations are USAGE before anything is sent', async () => {
    await refused('carol', 'USAGE', 'update_file', 'docs', 'v1.bin', file('v3.bin'), '--if-version', 'two');
    await refused('carol', 'USAGE', 'update_file', 'docs', 'v1.bin', file('v3.bin'), '--if-version', '0');
    await refused(
      'carol',
      'USAGE',
      'download_file',
      'docs',
      'v1.bin',
      join(root.path, 'x.bin'),
      '--version',
      '-1',
    );
    await refused('carol', 'USAGE', 'lock_file', 'docs', 'v1.bin', '--ttl', '5 minutes');
    await refused('carol', 'USAGE', 'lock_file', 'docs', 'v1.bin', '--ttl', '2d');
    await refused('alice', 'USAGE', 'set_versions', 'docs', '0');
    await refused('alice', 'USAGE', 'set_versions', 'docs', 'many');
    expect((await versions('carol', 'v1.bin')).lock).toBeUndefined();
    await versionGone('9', 'x.bin');
  });

  it("a lock keeps others' updates and deletes off, naming its holder and expiry, until unlock_file", async () => {
    const locked = await ok('bob', 'lock_file', 'docs', 'v1.bin', '--ttl', '5m');
    expect(locked).toContain("locked 'v1.bin' in 'docs' until");
    const lock = (await versions('carol', 'v1.bin')).lock!;
    expect(lock.holder).toBe('bob');
    expect(lock.expiresAt - Date.now()).toBeGreaterThan(4 * 60_000);
    expect(lock.expiresAt - Date.now()).toBeLessThanOrEqual(5 * 60_000);
    const until_ = new Date(lock.expiresAt).toISOString();
    for (const err of [
      await refused('carol', 'FILE_LOCKED', 'update_file', 'docs', 'v1.bin', file('v3.bin')),
      await refused('alice', 'FILE_LOCKED', 'delete_file', 'docs', 'v1.bin'),
    ]) {
      expect(err).toContain(`locked by 'bob' until ${until_}`);
    }
    expect(await ok('carol', 'list_files', 'docs')).toMatch(/v1\.bin\s+v2\s.*\sbob until /);
    // The holder may still write: it is the others the lock keeps off.
    expect(await ok('bob', 'lock_file', 'docs', 'v1.bin', '--ttl', '1h')).toContain('until');
    expect((await ok('bob', 'unlock_file', 'docs', 'v1.bin')).trim()).toBe("unlocked 'v1.bin' in 'docs'");
    expect(await ok('carol', 'update_file', 'docs', 'v1.bin', file('v3.bin'), '--if-version', '2')).toContain(
      'is now version 3',
    );
  });

  it("a killed holder's lock ends with its peer", async () => {
    await ok('carol', 'lock_file', 'docs', 'v1.bin', '--ttl', '1h');
    await refused('bob', 'FILE_LOCKED', 'update_file', 'docs', 'v1.bin', file('v4.bin'));
    await stop(peers.get('carol')!.child, 'SIGKILL');
    await until('the lock ends', async () => (await versions('bob', 'v1.bin')).lock === undefined, 15_000);
    expect(await ok('bob', 'update_file', 'docs', 'v1.bin', file('v4.bin'))).toContain('is now version 4');
    await startPeer('carol');
    await connected('carol');
  });

  it('delete_file: NOT_AUTHOR for others; by its author the name leaves the listing and its running download fails', async () => {
    await ok('alice', 'upload_file', file('film.bin'), 'docs');
    await refused('bob', 'NOT_AUTHOR', 'delete_file', 'docs', 'film.bin');
    const dest = join(root.path, 'film-copy.bin');
    await ok('carol', 'download_file', 'docs', 'film.bin', dest);
    const carolDownload = async () =>
      (
        (await callDaemon(dir('carol'), 'show_downloads', [])) as { downloads: DownloadView[] }
      ).downloads.find((d) => d.dest === dest)!;
    await until('the download runs', async () => (await carolDownload()).doneBytes > 0, 20_000);
    expect(await ok('alice', 'delete_file', 'docs', 'film.bin')).toContain("deleted 'film.bin' from 'docs'");
    expect((await listed('bob')).map((f) => f.name)).not.toContain('film.bin');
    await until('the download fails', async () => (await carolDownload()).state === 'failed', 15_000);
    const failed = await carolDownload();
    expect(failed.doneBytes).toBeLessThan(8 * MiB);
    expect(failed.error).toContain("'film.bin' was deleted from group 'docs'");
    // alice's share of it is gone from her store: nothing left to stop.
    await refused('alice', 'NOT_SHARING', 'stop_share', 'docs', 'film.bin');
    await refused(
      'carol',
      'FILE_NOT_FOUND',
      'download_file',
      'docs',
      'film.bin',
      join(root.path, 'again.bin'),
    );
  });

  it('set_versions drops the versions past K (owner only)', async () => {
    await refused('bob', 'NOT_OWNER', 'set_versions', 'docs', '1');
    expect((await versions('bob', 'v1.bin')).versions).toHaveLength(4);
    expect(await ok('alice', 'set_versions', 'docs', '2')).toContain(
      "'docs' keeps 2 versions of each file; 2 old versions dropped",
    );
    const list = await versions('bob', 'v1.bin');
    expect(list.keep).toBe(2);
    expect(list.versions.map((v) => v.version)).toEqual([4, 3]);
    await versionGone('1', 'gone.bin');
    // alice seeded version 1: dropped, she no longer shares it.
    await refused('alice', 'NOT_SHARING', 'stop_share', 'docs', 'v1.bin');
  });
});
