import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import type { FileList } from '../../src/protocol/api.js';
import type { DownloadView, StatusView } from '../../src/protocol/control.js';
import { FILE_PAGE_PATH_BYTES } from '../../src/protocol/manifest-pages.js';
import { stop } from '../helpers/cli-harness.js';
import { cliSwarm } from '../helpers/cli-swarm.js';
import { flipByte } from '../helpers/flip-byte.js';
import { filesUnder } from '../helpers/folder-group.js';
import { storageTrackerArgs } from '../helpers/storage-peer-fake.js';
import { daemonCall, signUp, storageGroup } from '../helpers/storage-swarm.js';
import { until, within } from '../helpers/wait.js';

// A storage peer keeps a folder replica of 1,500 files with its manifest in pages
// (peer.db schema 8, issue 16): the replicas row holds the root, replica_pages the pages. The
// peer scrubs it through its pages, restarts with it (from peer.db alone: the sharer is gone),
// serves it whole, and its scrub finds a byte flipped in a file of the last file page. The files
// are of 1 to 300 bytes, a piece each: such a folder never downloaded before the scheduler
// bounded its requests per peer by count (the seeder refused those past 128).

type Name = 'alice' | 'bob' | 's1';
const GROUP = 'pages';
const FILES = 1500;
/** Long paths (410 bytes): a file page holds about 640 of them, so the tree takes three file pages. */
const pathOf = (i: number) => `${'d'.repeat(200)}/${String(i).padStart(5, '0')}-${'n'.repeat(200)}`;
const TREE: Record<string, number> = Object.fromEntries(
  Array.from({ length: FILES }, (_, i) => [pathOf(i), 1 + ((i * 37) % 300)]),
);
const STORAGE_ARGS = ['--scrub-pause-ms', '300'];

describe('a folder replica of 1,500 files kept in manifest pages', { timeout: 360_000 }, () => {
  const swarm = cliSwarm<Name>('coterie-storage-pages-');
  const run = daemonCall<Name>(swarm.dir);
  const src = join(swarm.root, 'files', 'many');
  let fileId = '';
  const replica = () => join(swarm.dir('s1'), 'storage', GROUP, fileId);
  const storage = async () => (await run<StatusView>('s1', 'status')).storage;
  const sameAsSource = (dir: string) => {
    for (const path of Object.keys(TREE))
      expect(readFileSync(join(dir, path)).equals(readFileSync(join(src, path))), path).toBe(true);
  };

  beforeAll(async () => {
    mkdirSync(join(src, 'd'.repeat(200)), { recursive: true });
    for (const [path, size] of Object.entries(TREE)) writeFileSync(join(src, path), Buffer.alloc(size, path));
    await swarm.startTracker(storageTrackerArgs(60_000, 'loose'));
    await swarm.startPeer('alice');
    await swarm.startPeer('bob');
    await swarm.startPeer('s1', STORAGE_ARGS);
    await signUp(run, ['alice', 'bob', 's1']);
    await storageGroup(run, 'alice', GROUP, ['bob', 's1'], { peers: ['s1'], quota: '50MiB' });
    await run('alice', 'upload_file', src, GROUP);
    fileId = (await run<FileList>('alice', 'list_files', GROUP)).files[0]!.fileId;
  }, 120_000);

  it('holds it as a root and pages, scrubs it, restarts with it and serves it; the scrub finds a flipped byte', async () => {
    await run('alice', 'set_replication', GROUP, '1');
    await until('s1 holds the folder', async () => (await storage())?.replicas === 1, 90_000, 200);
    const db = new Database(join(swarm.dir('s1'), 'peer.db'), { readonly: true });
    try {
      const root = db.prepare('SELECT manifest_json FROM replicas WHERE file_id = ?').get(fileId) as {
        manifest_json: string;
      };
      expect(JSON.parse(root.manifest_json)).toMatchObject({ version: 2, fileCount: FILES });
      expect(root.manifest_json.length).toBeLessThan(1000);
      const pages = db
        .prepare('SELECT length(body) AS n FROM replica_pages WHERE file_id = ? ORDER BY page_no')
        .all(fileId) as { n: number }[];
      // Three file pages and one piece page, none larger than a page may be.
      expect(pages).toHaveLength(4);
      for (const p of pages) expect(p.n).toBeLessThan(FILE_PAGE_PATH_BYTES + 64 * 1024);
    } finally {
      db.close();
    }
    const passes = (await storage())!.scrub!.passes;
    await until(
      'a whole scrub pass over the folder',
      async () => (await storage())!.scrub!.passes > passes + 1,
      60_000,
    );
    expect((await storage())?.replicas).toBe(1);

    // Only s1 has the folder now; it restarts from peer.db.
    await stop(swarm.procs.get('alice')!.child);
    swarm.procs.delete('alice');
    await stop(swarm.procs.get('s1')!.child);
    await swarm.startPeer('s1', STORAGE_ARGS);
    await until('s1 holds the folder again', async () => (await storage())?.replicas === 1, 60_000);
    expect(readFileSync(join(swarm.dir('s1'), 'peer.log'), 'utf8')).not.toContain('replica unusable');
    const dest = join(swarm.root, 'bob-many');
    const got = await within(
      "bob's download of the folder from s1",
      60_000,
      run<DownloadView>('bob', 'download_file', GROUP, 'many', dest, '--wait'),
    );
    expect(got.state).toBe('completed');
    expect(filesUnder(dest)).toEqual(TREE);
    sameAsSource(dest);

    // A file listed on the last file page: the scrub reads that page to check it.
    flipByte(join(replica(), pathOf(FILES - 1)), 0);
    await until('the scrub drops the damaged replica', async () => (await storage())?.replicas === 0, 60_000);
    const log = readFileSync(join(swarm.dir('s1'), 'peer.log'), 'utf8');
    expect(log).toContain('scrub found a damaged replica');
    expect(log).not.toContain('scrub could not read a replica');
  });
});
