import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { PeerStore } from '../../src/peer/store/index.js';
import { SCHEMA_VERSION } from '../../src/peer/store/migrations.js';
import { CoterieError } from '../../src/protocol/errors.js';
import type { Manifest } from '../../src/protocol/manifest.js';
import { FILES_PER_PAGE, PIECES_PER_PAGE, pagesOf } from '../../src/protocol/manifest-pages.js';
import { folderManifest, peerDbAt, peerDbRows, spoilFirstPages } from '../helpers/peer-db.js';
import { tempDir } from '../helpers/temp-dir.js';

// peer.db schema 8 (issue 16): a folder replica's manifest is kept in the tracker's pages, not
// one JSON row, and read a page at a time; a schema-7 peer.db's replicas are cut into pages
// as it opens, and a replica's pages go with it.

const PIECE = 16 * 1024;
const hex = (s: string) => createHash('sha256').update(s).digest('hex');
const folder = folderManifest;

const single: Manifest = { version: 1, size: 20_000, pieceSize: PIECE, pieces: [hex('a'), hex('b')] };
const rec = (fileId: string, size: number) => ({
  groupId: 'g',
  fileId,
  path: `/s/g/${fileId}`,
  size,
  heldAt: 7,
});
const FOLDER_ID = 'f'.repeat(64);
const SINGLE_ID = 'e'.repeat(64);

const rows = peerDbRows;

/** What a page-by-page reader sees: every file entry, and every piece hash by index. */
function readPaged(store: PeerStore, fileId: string): { files: string[]; pieces: string[] } {
  const m = store.replicas.manifest('g', fileId)!;
  const files = [...m.filePages()].flatMap((page) => page.map((f) => f.path));
  const pieces = Array.from({ length: m.pieceCount }, (_, i) => m.piece(i));
  return { files, pieces };
}

describe('peer store: replica manifests in pages', () => {
  const big = folder(10_000);

  it('keeps a folder of 10,000 files as its root and bounded pages, read whole or page by page', () => {
    const dir = tempDir().path;
    const store = new PeerStore(dir);
    try {
      store.replicas.put(rec(FOLDER_ID, big.size), big);
      store.replicas.put(rec(SINGLE_ID, single.size), single);
      expect(store.replicas.list()).toEqual([rec(SINGLE_ID, single.size), rec(FOLDER_ID, big.size)]);
      expect(store.replicas.manifest('g', FOLDER_ID)!.whole()).toEqual(big);
      expect(readPaged(store, FOLDER_ID)).toEqual({
        files: big.files!.map((f) => f.path),
        pieces: big.pieces,
      });
      expect(store.replicas.manifest('g', SINGLE_ID)!.whole()).toEqual(single);
      expect([...store.replicas.manifest('g', SINGLE_ID)!.filePages()]).toEqual([]);
    } finally {
      store.close();
    }
    const pages = rows(
      dir,
      `SELECT page_no, length(body) AS n FROM replica_pages WHERE file_id = '${FOLDER_ID}'`,
    ) as { n: number }[];
    const expected = Math.ceil(10_000 / FILES_PER_PAGE) + Math.ceil(big.pieces.length / PIECES_PER_PAGE);
    expect(pages).toHaveLength(expected);
    expect(Math.max(...pages.map((p) => p.n))).toBeLessThan(1024 * 1024);
    // The replicas row holds the root only: a few hundred bytes, not the whole manifest.
    const [root] = rows(
      dir,
      `SELECT length(manifest_json) AS n FROM replicas WHERE file_id = '${FOLDER_ID}'`,
    ) as { n: number }[];
    expect(root!.n).toBeLessThan(1000);
    expect(JSON.stringify(big).length).toBeGreaterThan(500_000);
  });

  it('removes a replica with its pages, and refuses a page that does not match its hash', () => {
    const dir = tempDir().path;
    const store = new PeerStore(dir);
    try {
      store.replicas.put(rec(FOLDER_ID, big.size), big);
      store.replicas.put(rec('d'.repeat(64), big.size), big);
      store.replicas.remove('g', FOLDER_ID);
      expect(store.replicas.manifest('g', FOLDER_ID)).toBeUndefined();
      expect(rows(dir, `SELECT 1 FROM replica_pages WHERE file_id = '${FOLDER_ID}'`)).toEqual([]);
      spoilFirstPages(dir, 'replica_pages');
      const m = store.replicas.manifest('g', 'd'.repeat(64))!;
      for (const read of [() => m.whole(), () => [...m.filePages()]]) {
        expect(read).toThrow(CoterieError);
        expect(read).toThrow(/does not match its hash/);
      }
      expect(m.piece(0)).toBe(big.pieces[0]); // piece pages are whole
    } finally {
      store.close();
    }
  });

  it('migrates a schema-7 peer.db: its folder replica is cut into pages, a single file stays whole', () => {
    const dir = tempDir().path;
    peerDbAt(dir, 7, (db) => {
      const insert = db.prepare('INSERT INTO replicas VALUES (?, ?, ?, ?, ?, ?)');
      insert.run('g', FOLDER_ID, `/s/g/${FOLDER_ID}`, big.size, JSON.stringify(big), 7);
      insert.run('g', SINGLE_ID, `/s/g/${SINGLE_ID}`, single.size, JSON.stringify(single), 7);
      insert.run('g', 'c'.repeat(64), '/s/g/c', 1, '{"files": broken', 7);
    });
    const store = new PeerStore(dir);
    try {
      expect(store.replicas.list().map((r) => r.fileId)).toEqual(['c'.repeat(64), SINGLE_ID, FOLDER_ID]);
      expect(store.replicas.manifest('g', FOLDER_ID)!.whole()).toEqual(big);
      expect(readPaged(store, FOLDER_ID).pieces).toEqual(big.pieces);
      expect(store.replicas.manifest('g', SINGLE_ID)!.whole()).toEqual(single);
      // Left as it was: the daemon finds it unusable at start and drops it.
      expect(() => store.replicas.manifest('g', 'c'.repeat(64))).toThrow(SyntaxError);
    } finally {
      store.close();
    }
    expect(rows(dir, `SELECT count(*) AS n FROM replica_pages WHERE file_id = '${FOLDER_ID}'`)).toEqual([
      { n: pagesOf(big).pages.length },
    ]);
    expect(rows(dir, 'PRAGMA user_version')).toEqual([{ user_version: SCHEMA_VERSION }]);
  });
});
