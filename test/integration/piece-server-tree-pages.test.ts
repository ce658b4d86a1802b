import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTreeManifest } from '../../src/core/tree-manifest.js';
import { downloadTree } from '../../src/peer/files/download/index.js';
import { TreePieceSource } from '../../src/peer/files/tree-source.js';
import { PeerStore, type ShareRecord } from '../../src/peer/store/index.js';
import type { Manifest } from '../../src/protocol/manifest.js';
import { FILE_PAGE_PATH_BYTES, FILES_PER_PAGE } from '../../src/protocol/manifest-pages.js';
import { spoilFirstPages } from '../helpers/peer-db.js';
import { servedFile } from '../helpers/served-file.js';
import { until } from '../helpers/wait.js';

// A folder served from its manifest's pages in peer.db (issue 17), not from the whole manifest:
// a tree of three file pages, served with one decoded page cached at a time, downloads
// byte-identical; a page altered in peer.db is refused (PIECE_UNAVAILABLE), the others serve.

const PIECE = 16 * 1024;
/**
 * Three file pages: long paths fill a page's FILE_PAGE_PATH_BYTES before FILES_PER_PAGE files.
 * File i: empty when i % 50 = 7, 40 KiB (3 pieces) when i % 500 = 3, else tiny.
 */
const NAME = 'n'.repeat(190);
const FILES = Math.ceil((2.2 * FILE_PAGE_PATH_BYTES) / (NAME.length + 16));
const path = (i: number) => `d${i % 7}/${NAME}${String(i).padStart(6, '0')}.txt`;
const body = (i: number) =>
  i % 50 === 7 ? '' : i % 500 === 3 ? `big ${i} `.repeat(4096).slice(0, 40 * 1024) : `file ${i}\n`;

const { file: fx, serveSource, ticket, connect } = servedFile('coterie-tree-pages-', 1000);
let root: string;
let manifest: Manifest;
let fileId: string;
let store: PeerStore;
let share: ShareRecord;

beforeAll(async () => {
  root = join(fx.dir, 'tree');
  for (let d = 0; d < 7; d++) await mkdir(join(root, `d${d}`), { recursive: true });
  for (let i = 0; i < FILES; i++) await writeFile(join(root, path(i)), body(i));
  ({ manifest, fileId } = await createTreeManifest(root, { pieceSize: PIECE, workers: 1 }));
  expect(FILES).toBeLessThan(FILES_PER_PAGE);
  await mkdir(join(fx.dir, 'peer'));
  store = new PeerStore(join(fx.dir, 'peer'));
  share = {
    groupId: 'g',
    fileName: 'tree',
    fileId,
    version: 1,
    path: root,
    size: manifest.size,
    createdAt: 1,
  };
  store.shares.put(share, manifest);
  return () => store.close();
}, 120_000);

/** A source over the share's pages in peer.db, one decoded page held at a time. */
function servedFromPages(): TreePieceSource {
  const stored = store.shares.manifest(share)!;
  expect(stored.filePageCount).toBe(3);
  return new TreePieceSource(root, stored, { cachedPages: 1 });
}

describe('a folder served from its pages in peer.db', { timeout: 180_000 }, () => {
  it('downloads byte-identical with one page cached, reading pages again as pieces need them', async () => {
    const source = servedFromPages();
    const server = await serveSource(source, fileId);
    const dest = join(fx.dir, 'down');
    const handle = downloadTree({
      manifest,
      fileId,
      root: dest,
      selected: manifest.files!.keys(),
      identity: fx.client,
      ticket: await ticket({ file: fileId }),
      seeders: [{ peerId: fx.seeder.peerId, address: { host: '127.0.0.1', port: server.port }, score: 1 }],
    });
    await handle.done;
    for (let i = 0; i < FILES; i++) {
      expect(await readFile(join(dest, path(i)), 'utf8'), path(i)).toBe(body(i));
    }
    // The index read each page once; serving, with one page held, read them again as it went.
    expect(source.index.pageReads).toBeGreaterThanOrEqual(3);
  });

  it('refuses the pieces of a page altered in peer.db with a coded reject, and serves the others', async () => {
    const source = servedFromPages();
    // Every piece shown at once (not a spread window): a refusal is then the page's doing.
    const server = await serveSource(source, fileId, { spread: false });
    const c = await connect(server.port, fileId, fx.client);
    const last = manifest.pieces.length - 1;
    const lastLength = source.pieceLength(last); // the last page is now the one held, the first is not
    spoilFirstPages(join(fx.dir, 'peer'), 'share_pages');

    c.conn.write({ type: 'request', piece: 0, offset: 0, length: 1 });
    c.conn.write({ type: 'request', piece: last, offset: 0, length: lastLength });
    await until(
      'the answers',
      () => c.frames.filter((f) => f.type === 'reject' || f.type === 'piece').length >= 2,
    );
    const reject = c.frames.find((f) => f.type === 'reject');
    expect(reject?.type === 'reject' && reject.request?.piece === 0 && reject.code).toBe('PIECE_UNAVAILABLE');
    expect(reject?.type === 'reject' && reject.reason).toBe('cannot read that piece now');
    const piece = c.frames.find((f) => f.type === 'piece');
    const want = await readFile(join(root, ...manifest.files!.at(-1)!.path.split('/')));
    expect(piece?.type === 'piece' && piece.piece === last && piece.data.equals(want)).toBe(true);

    // Read directly, the altered page says what it is.
    await expect(source.read(0, 0, 1)).rejects.toMatchObject({ code: 'INVALID_MANIFEST' });
  });
});
