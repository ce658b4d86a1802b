import { describe, expect, it } from 'vitest';
import type { ShareRecord } from '../../src/peer/store/index.js';
import { SCHEMA_VERSION } from '../../src/peer/store/migrations.js';
import type { Manifest } from '../../src/protocol/manifest.js';
import { MAX_PAGE_BODY_BYTES, pagesOf } from '../../src/protocol/manifest-pages.js';
import { folderManifest, peerDbAt, peerDbRows, spoilFirstPages, withPeerStore } from '../helpers/peer-db.js';
import { tempDir } from '../helpers/temp-dir.js';

// peer.db schema 9 (issue 17): a folder this peer shares keeps its manifest as the root in
// shares.manifest_json and its pages in share_pages, as a replica's (schema 8), so no row is a
// whole 100,000-file tree; listing the shares reads no manifest; a schema-8 peer.db's folder
// shares are cut into pages as it opens; a share's pages go with it.

const single: Manifest = { version: 1, size: 10, pieceSize: 16_384, pieces: ['0'.repeat(64)] };
const FOLDER_ID = 'f'.repeat(64);
const SINGLE_ID = 'e'.repeat(64);
const share = (fileName: string, fileId: string, size: number, groupId = 'g'): ShareRecord => ({
  groupId,
  fileName,
  fileId,
  version: 1,
  path: `/data/${fileName}`,
  size,
  createdAt: 5,
});

/** The largest manifest_json of shares and the largest page body, in bytes. */
function largestRows(dir: string): { root: number; page: number } {
  const [r] = peerDbRows(dir, 'SELECT max(length(manifest_json)) AS n FROM shares') as { n: number }[];
  const [p] = peerDbRows(dir, 'SELECT max(length(body)) AS n FROM share_pages') as { n: number | null }[];
  return { root: r!.n, page: p!.n ?? 0 };
}

describe('peer store: share manifests in pages', () => {
  const big = folderManifest(10_000);

  it('keeps a shared folder of 10,000 files as its root and bounded pages, and reads it back whole', () => {
    const dir = tempDir().path;
    withPeerStore(dir, (store) => {
      store.shares.put(share('tree', FOLDER_ID, big.size), big);
      store.shares.put(share('a.txt', SINGLE_ID, single.size), single);
      expect(store.shares.list()).toEqual([
        share('a.txt', SINGLE_ID, 10),
        share('tree', FOLDER_ID, big.size),
      ]);
      const m = store.shares.manifest(share('tree', FOLDER_ID, 0))!;
      expect(m.folder).toBe(true);
      expect(m.whole()).toEqual(big);
      expect([...m.filePages()].flat()).toEqual(big.files);
      expect(store.shares.manifest(share('a.txt', SINGLE_ID, 0))).toMatchObject({ folder: false, size: 10 });
      expect(store.shares.manifest(share('a.txt', SINGLE_ID, 0))!.whole()).toEqual(single);
      expect(store.shares.manifest(share('nothing', SINGLE_ID, 0))).toBeUndefined();
    });
    expect(JSON.stringify(big).length).toBeGreaterThan(MAX_PAGE_BODY_BYTES);
    const { root, page } = largestRows(dir);
    expect(root).toBeLessThan(1000);
    expect(page).toBeLessThanOrEqual(MAX_PAGE_BODY_BYTES);
    expect(peerDbRows(dir, `SELECT count(*) AS n FROM share_pages WHERE file_id = '${FOLDER_ID}'`)).toEqual([
      { n: pagesOf(big).pages.length },
    ]);
  });

  it('removes a share with its pages, by name or by file id, and keeps another group’s', () => {
    const dir = tempDir().path;
    withPeerStore(dir, (store) => {
      store.shares.put(share('tree', FOLDER_ID, big.size), big);
      store.shares.put(share('tree', FOLDER_ID, big.size, 'h'), big);
      store.shares.put(share('copy', FOLDER_ID, big.size), big);
      expect(store.shares.remove('tree', 'g')).toHaveLength(1);
      expect(store.shares.manifest(share('tree', FOLDER_ID, 0))).toBeUndefined();
      expect(store.shares.removeFiles('g', [FOLDER_ID])).toEqual([share('copy', FOLDER_ID, big.size)]);
      expect(store.shares.manifest(share('tree', FOLDER_ID, 0, 'h'))!.whole()).toEqual(big);
    });
    const left = peerDbRows(dir, 'SELECT DISTINCT group_id, file_name FROM share_pages');
    expect(left).toEqual([{ group_id: 'h', file_name: 'tree' }]);
  });

  it('reads a served folder’s pages from another group’s share of it once its own share is gone', () => {
    const dir = tempDir().path;
    withPeerStore(dir, (store) => {
      store.shares.put(share('tree', FOLDER_ID, big.size), big);
      store.shares.put(share('tree', FOLDER_ID, big.size, 'h'), big);
      const served = store.shares.manifest(share('tree', FOLDER_ID, 0))!;
      expect(served.filePageCount).toBe(pagesOf(big).root.filePages.length);
      // stop_share in 'g': the folder is still served for 'h', from the pages read as before.
      store.shares.remove('tree', 'g');
      const files = Array.from({ length: served.filePageCount }, (_, no) => served.filePage(no)).flat();
      expect(files).toEqual(big.files);
      store.shares.remove('tree', 'h');
      expect(() => served.filePage(0)).toThrow(/page 0 of ffffffffffff is missing/);
      expect(() => served.filePage(served.filePageCount)).toThrow(/no file page/);
    });
  });

  it('refuses a share page that does not match its hash', () => {
    const dir = tempDir().path;
    withPeerStore(dir, (store) => {
      store.shares.put(share('tree', FOLDER_ID, big.size), big);
      spoilFirstPages(dir, 'share_pages');
      expect(() => store.shares.manifest(share('tree', FOLDER_ID, 0))!.whole()).toThrow(
        /page 0 of ffffffffffff does not match its hash/,
      );
    });
  });

  it('migrates a schema-8 peer.db: its folder share is cut into pages, a single file stays whole', () => {
    const dir = tempDir().path;
    peerDbAt(dir, 8, (db) => {
      const insert = db.prepare('INSERT INTO shares VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
      insert.run('g', 'tree', FOLDER_ID, 1, '/data/tree', big.size, JSON.stringify(big), 5);
      insert.run('g', 'a.txt', SINGLE_ID, 1, '/data/a.txt', single.size, JSON.stringify(single), 5);
      insert.run('g', 'bad', 'c'.repeat(64), 1, '/data/bad', 1, '{"files": broken', 5);
    });
    // One whole row, as schema 8 kept it.
    expect(peerDbRows(dir, 'SELECT max(length(manifest_json)) AS n FROM shares')).toEqual([
      { n: JSON.stringify(big).length },
    ]);
    withPeerStore(dir, (store) => {
      expect(store.shares.list().map((s) => s.fileName)).toEqual(['a.txt', 'bad', 'tree']);
      expect(store.shares.manifest(share('tree', FOLDER_ID, 0))!.whole()).toEqual(big);
      expect(store.shares.manifest(share('a.txt', SINGLE_ID, 0))!.whole()).toEqual(single);
      // Left as it was: serving it fails, and the daemon logs it and goes on with the others.
      expect(() => store.shares.manifest(share('bad', 'c'.repeat(64), 0))).toThrow(SyntaxError);
    });
    expect(largestRows(dir).root).toBeLessThan(1000 + '{"files": broken'.length);
    expect(largestRows(dir).page).toBeLessThanOrEqual(MAX_PAGE_BODY_BYTES);
    expect(peerDbRows(dir, 'PRAGMA user_version')).toEqual([{ user_version: SCHEMA_VERSION }]);
  });
});
