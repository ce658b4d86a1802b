import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { callDaemon } from '../../src/peer/control/client.js';
import type { DownloadView, FileTree } from '../../src/protocol/control.js';
import { until } from '../helpers/cli-harness.js';
import { cliSwarm } from '../helpers/cli-swarm.js';
import { filesUnder, SAMPLE_TREE, shareFolderInGroup, writeSampleTree } from '../helpers/folder-group.js';

// Folder shares (issue 17) through the real binary: alice shares a nested tree with an empty
// file and an executable, bob downloads it whole (byte-identical, modes restored), carol takes
// only docs/** (every other file absent: 0 bytes on disk) and then widens the same download
// with select_files.

type Name = 'alice' | 'bob' | 'carol';

const TREE = SAMPLE_TREE;

describe('folder shares and selective download', { timeout: 120_000 }, () => {
  const swarm = cliSwarm<Name>('coterie-folders-');
  const { root, as, ok } = swarm;
  const src = join(root, 'files', 'release');

  beforeAll(async () => {
    writeSampleTree(src);
    await shareFolderInGroup(swarm, ['alice', 'bob', 'carol'], src, "sharing folder 'release' (7 files");
  }, 60_000);

  it('lists the tree with sizes', async () => {
    const tree = (await callDaemon(swarm.dir('bob'), 'list_files', ['rel', 'release'])) as FileTree;
    expect(tree.folder).toBe(true);
    expect(Object.fromEntries(tree.files.map((f) => [f.path, f.size]))).toEqual(TREE);
    expect(tree.files.find((f) => f.path === 'bin/run.sh')?.executable).toBe(true);
    const shown = await ok('bob', 'list_files', 'rel', 'release');
    expect(shown.out).toContain('docs/guide/intro.md');
    expect(shown.out).toContain('bin/run.sh*');
  });

  it('downloads the whole tree byte-identical, with its executable bit', async () => {
    const dest = join(root, 'bob-release');
    await ok('bob', 'download_file', 'rel', 'release', dest, '--wait');
    expect(filesUnder(dest)).toEqual(TREE);
    for (const path of Object.keys(TREE)) {
      expect(readFileSync(join(dest, path)).equals(readFileSync(join(src, path))), path).toBe(true);
    }
    expect(statSync(join(dest, 'bin/run.sh')).mode & 0o111).not.toBe(0);
    expect(statSync(join(dest, 'README.md')).mode & 0o111).toBe(0);
  });

  it('fetches only docs/** (nothing else on disk), then widens the same download', async () => {
    const dest = join(root, 'carol-release');
    await ok('carol', 'download_file', 'rel', 'release', dest, '--only', 'docs/**', '--wait');
    const docs = Object.fromEntries(Object.entries(TREE).filter(([p]) => p.startsWith('docs/')));
    expect(filesUnder(dest)).toEqual(docs);
    expect(existsSync(join(dest, 'media'))).toBe(false);

    const before = (await swarm.downloads<DownloadView>('carol')).filter((d) => d.fileName === 'release');
    expect(before).toHaveLength(1);
    await ok('carol', 'select_files', 'rel', 'release', 'media/**', 'bin/*');
    await until('the widened download completes', async () => {
      const rows = (await swarm.downloads<DownloadView>('carol')).filter((d) => d.fileName === 'release');
      return rows.length === 1 && rows[0]!.state === 'completed' && rows[0]!.doneBytes === rows[0]!.size;
    });
    const rows = (await swarm.downloads<DownloadView>('carol')).filter((d) => d.fileName === 'release');
    expect(rows[0]!.id).toBe(before[0]!.id);
    const widened = Object.fromEntries(
      Object.entries(TREE).filter(
        ([p]) => p.startsWith('docs/') || p.startsWith('media/') || p.startsWith('bin/'),
      ),
    );
    expect(filesUnder(dest)).toEqual(widened);
    expect(
      readFileSync(join(dest, 'media/deep/b.bin')).equals(readFileSync(join(src, 'media/deep/b.bin'))),
    ).toBe(true);
    expect(statSync(join(dest, 'bin/run.sh')).mode & 0o111).not.toBe(0);
  });

  it('refuses a glob that matches nothing, saying which', async () => {
    const r = await as(
      'carol',
      'download_file',
      'rel',
      'release',
      join(root, 'nothing'),
      '--only',
      'nope/**',
    );
    expect(r.code).not.toBe(0);
    expect(r.err).toContain('[USAGE]');
    expect(r.err).toContain('nope/**');
    expect(existsSync(join(root, 'nothing'))).toBe(false);
  });

  it('refuses a lying manifest (a ../ path) with INVALID_MANIFEST, writing nothing', async () => {
    // The tracker checks every manifest it is given, so the lie is planted where a compromised
    // tracker (or one it relays for) would have it: the stored manifest page itself.
    const evil = join(root, 'files', 'evil');
    mkdirSync(evil, { recursive: true });
    writeFileSync(join(evil, 'aa.txt'), 'harmless');
    await ok('alice', 'upload_file', evil, 'rel');
    const db = new Database(join(swarm.dir('tracker'), 'tracker.db'));
    try {
      const changed = db
        .prepare(`UPDATE manifest_pages SET body = replace(body, '"path":"aa.txt"', '"path":"../x"')`)
        .run().changes;
      expect(changed).toBeGreaterThan(0);
    } finally {
      db.close();
    }
    const dest = join(root, 'bob-evil');
    const listed = await as('bob', 'list_files', 'rel', 'evil');
    expect(listed.err).toContain('[INVALID_MANIFEST]');
    const r = await as('bob', 'download_file', 'rel', 'evil', dest, '--wait');
    expect(r.code).toBe(1);
    expect(r.err).toContain('[INVALID_MANIFEST]');
    expect(r.err).toContain("'..'");
    expect(existsSync(dest)).toBe(false);
    expect(existsSync(join(root, 'x'))).toBe(false);
  });
});
