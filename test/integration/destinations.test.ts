import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callDaemon } from '../../src/peer/control/client.js';
import { coterie, type Daemon, randomFile, startProcess, stop, until } from '../helpers/cli-harness.js';
import { mountTmpfs, type Tmpfs, tmpfsOrSkip } from '../helpers/tmpfs.js';

// download_file's destination through the real daemon and CLI: a link planted beside it is
// refused with PATH_INVALID and its target left alone, a destination directory swapped for a
// link while the daemon is down is refused when the download resumes, and on a full disk
// (a tmpfs of its own, as root) a download that fits completes, one that does not is
// DISK_FULL with nothing left, and the daemon goes on serving.

const MiB = 1024 * 1024;
const CAN_MOUNT = tmpfsOrSkip('destinations');

/** What show_downloads says of a download (the fields these tests read). */
type DownloadRow = { state: string; doneBytes: number; dest: string; error: string | null };

describe('download destinations through the daemon', { timeout: 60_000 }, () => {
  const root = mkdtempSync(join(tmpdir(), 'coterie-dest-e2e-'));
  const dir = (n: string) => join(root, n);
  const files = join(root, 'files');
  const victim = join(root, 'victim.txt');
  const VICTIM = 'a file of the user: must never change\n';
  let trackerUrl = '';
  const procs = new Map<string, Daemon>();
  let disk: Tmpfs | undefined;

  const as = (n: string, ...args: string[]) => coterie(['--data-dir', dir(n), ...args]);
  const ok = async (n: string, ...args: string[]) => {
    const r = await as(n, ...args);
    expect(r.code, `${args.join(' ')}: ${r.err}`).toBe(0);
    return r;
  };
  const expectError = async (r: Promise<{ code: number; err: string }>, code: string, text?: string) => {
    const res = await r;
    expect(res.code, res.err).not.toBe(0);
    expect(res.err).toContain(`[${code}]`);
    if (text !== undefined) expect(res.err).toContain(text);
  };
  const downloads = async (n: string) =>
    ((await callDaemon(dir(n), 'show_downloads', [])) as { downloads: DownloadRow[] }).downloads;
  const victimUntouched = () => expect(readFileSync(victim, 'utf8')).toBe(VICTIM);

  // alice caps her uploads so that the big download lasts long enough to stop dave mid-way.
  const startPeer = async (n: string) => {
    const limit = n === 'alice' ? ['--upload-limit-kib', '1024'] : [];
    procs.set(
      n,
      await startProcess(
        ['peer', '--data-dir', dir(n), '--tracker', trackerUrl, '--no-shell', ...limit],
        /^peer [0-9a-f]{64} serving on/,
        join(root, `${n}.log`),
      ),
    );
  };

  const share = async (name: string, bytes: number) => {
    await randomFile(join(files, name), bytes);
    await ok('alice', 'upload_file', join(files, name), 'films');
  };

  beforeAll(async () => {
    writeFileSync(victim, VICTIM);
    const tracker = await startProcess(
      ['tracker', '--port', '0', '--data-dir', dir('tracker'), '--scrypt-log-n', '10', '--log-level', 'warn'],
      /listening on/,
      join(root, 'tracker.log'),
    );
    procs.set('tracker', tracker);
    trackerUrl = /listening on (https:\/\/\S+)/.exec(tracker.line)![1]!;
    await Promise.all(['alice', 'dave'].map(startPeer));
    for (const n of ['alice', 'dave']) {
      await ok(n, 'create_user', n, `${n}-password`);
      await ok(n, 'login', n, `${n}-password`);
    }
    await ok('alice', 'create_group', 'films');
    await ok('dave', 'join_group', 'films');
    await ok('alice', 'accept_request', 'films', 'dave');
    await share('small.bin', 256 * 1024);
    await share('big.bin', 8 * MiB);
  }, 60_000);

  afterAll(async () => {
    for (const n of ['dave', 'alice', 'tracker']) {
      const p = procs.get(n);
      if (p !== undefined) await stop(p.child);
    }
    disk?.unmount();
    rmSync(root, { recursive: true, force: true });
  }, 30_000);

  it('a link planted at <dest>.part: download_file --wait fails with PATH_INVALID, the link and its target untouched', async () => {
    mkdirSync(dir('dl'));
    const dest = join(dir('dl'), 'small.bin');
    symlinkSync(victim, `${dest}.part`);
    await expectError(
      as('dave', 'download_file', 'films', 'small.bin', dest, '--wait'),
      'PATH_INVALID',
      'symbolic link',
    );
    victimUntouched();
    expect(readlinkSync(`${dest}.part`)).toBe(victim);
    expect(readdirSync(dir('dl'))).toEqual(['small.bin.part']);
    // A link as the destination itself is refused before anything starts.
    symlinkSync(victim, join(dir('dl'), 'to-victim'));
    await expectError(
      as('dave', 'download_file', 'films', 'small.bin', join(dir('dl'), 'to-victim'), '--wait'),
      'PATH_INVALID',
    );
    victimUntouched();
  });

  it("destination rules: 'dir/' that does not exist, a file in a missing directory", async () => {
    await expectError(
      as('dave', 'download_file', 'films', 'small.bin', `${dir('newdir')}/`),
      'PATH_INVALID',
      `destination directory does not exist: ${dir('newdir')}`,
    );
    await expectError(
      as('dave', 'download_file', 'films', 'small.bin', join(dir('nodir'), 'x.bin')),
      'PATH_INVALID',
      `directory does not exist: ${dir('nodir')}`,
    );
    // and a destination that does not exist, without a slash, is the file itself
    mkdirSync(dir('dl-file'));
    await ok('dave', 'download_file', 'films', 'small.bin', join(dir('dl-file'), 'renamed.bin'), '--wait');
    expect(
      readFileSync(join(dir('dl-file'), 'renamed.bin')).equals(readFileSync(join(files, 'small.bin'))),
    ).toBe(true);
  });

  it('the destination directory swapped for a link while the daemon is down: the resume is refused, nothing written where it points', async () => {
    const dl = dir('dl-swap');
    const other = dir('other');
    mkdirSync(dl);
    mkdirSync(other);
    const dest = join(dl, 'big.bin');
    await ok('dave', 'download_file', 'films', 'big.bin', dest);
    await until('10% downloaded', async () => {
      const d = (await downloads('dave')).find((x) => x.dest === dest);
      return d !== undefined && d.doneBytes > 0.1 * 8 * MiB;
    });
    expect(await stop(procs.get('dave')!.child)).toBe(0);
    renameSync(dl, dir('dl-swap-moved'));
    symlinkSync(other, dl);
    await startPeer('dave');
    await until(
      'the resume refused',
      async () => (await downloads('dave')).find((x) => x.dest === dest)?.state === 'failed',
      30_000,
    );
    const failed = (await downloads('dave')).find((x) => x.dest === dest)!;
    expect(failed.error).toMatch(/no longer a directory|not the directory/);
    expect(readdirSync(other)).toEqual([]);
    expect(lstatSync(dl).isSymbolicLink()).toBe(true);
    expect(readdirSync(dir('dl-swap-moved')).sort()).toEqual(['big.bin.part', 'big.bin.part.resume']);
    // The daemon goes on: the next command is served.
    await ok('dave', 'status');
  });

  it.runIf(CAN_MOUNT)(
    'a full disk: a file that exactly fits completes; one that does not is DISK_FULL, nothing left; the daemon serves on',
    async () => {
      disk = mountTmpfs(4 * MiB);
      await share('fits.bin', disk.free());
      await share('more.bin', 64 * 1024);
      await ok('dave', 'download_file', 'films', 'fits.bin', `${disk.dir}/`, '--wait');
      expect(readFileSync(join(disk.dir, 'fits.bin')).equals(readFileSync(join(files, 'fits.bin')))).toBe(
        true,
      );
      await expectError(
        as('dave', 'download_file', 'films', 'more.bin', `${disk.dir}/`, '--wait'),
        'DISK_FULL',
        'free some space',
      );
      expect(readdirSync(disk.dir)).toEqual(['fits.bin']);
      await ok('dave', 'status');
    },
  );
});
