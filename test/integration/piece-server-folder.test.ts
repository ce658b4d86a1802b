import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTreeManifest } from '../../src/core/tree-manifest.js';
import { downloadTree } from '../../src/peer/files/download/index.js';
import { wholeTreePages } from '../../src/peer/files/tree-pages.js';
import { TreePieceSource } from '../../src/peer/files/tree-source.js';
import type { Manifest } from '../../src/protocol/manifest.js';
import { treeLayout } from '../../src/protocol/manifest.js';
import { haves } from '../helpers/piece-client.js';
import { servedFile } from '../helpers/served-file.js';
import { until } from '../helpers/wait.js';

// A folder seeder and downloader, in process over loopback TLS.
//
// A seeder of a folder share spreads it as it spreads a file (wire/spread.ts): each downloader is
// shown an empty bitfield, then a window of pieces nobody else was shown, so downloaders that
// trade fetch distinct pieces from it first. (Before, a folder showed everyone every piece.)

const MiB = 1024 * 1024;
const FILES = 24;
/** One piece per file, and a lone downloader's window of 32 MiB is 8 of them. */
const PIECE = 4 * MiB;
const WINDOW = 8;

const { file: fx, serveSource, ticket, connect } = servedFile('coterie-piece-folder-', 1000);
let root: string;
let manifest: Manifest;
let fileId: string;

beforeAll(async () => {
  root = join(fx.dir, 'tree');
  for (let i = 0; i < FILES; i++) {
    const dir = join(root, `d${i % 3}`);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, `f${i}.bin`), randomBytes(64 * 1024 + i));
  }
  ({ manifest, fileId } = await createTreeManifest(root, { pieceSize: PIECE, workers: 1 }));
});

describe('a folder seeder', () => {
  it('shows two downloaders disjoint first windows of the tree, and serves what it showed', async () => {
    expect(manifest.pieces.length).toBe(FILES);
    const server = await serveSource(new TreePieceSource(root, wholeTreePages(manifest)), fileId);
    const a = await connect(server.port, fileId, fx.client);
    await until('a window for the first', () => haves(a).length >= WINDOW);
    const b = await connect(server.port, fileId, fx.stranger);
    await until('a window for the second', () => haves(b).length >= WINDOW);
    for (const c of [a, b]) {
      const bf = c.frames.find((f) => f.type === 'bitfield');
      expect(bf?.type === 'bitfield' && bf.bitfield.isEmpty() && bf.bitfield.length === FILES).toBe(true);
    }
    // The first windows (later haves are a starved connection's wider ones).
    const first = [haves(a).slice(0, WINDOW), haves(b).slice(0, WINDOW)];
    expect(new Set(first.flat()).size).toBe(2 * WINDOW);

    // A piece shown is served, the bytes of its file.
    const piece = first[1]![0]!;
    const k = treeLayout(manifest).fileOfPiece(piece);
    const path = manifest.files![k]!.path;
    const want = await readFile(join(root, ...path.split('/')));
    b.conn.write({ type: 'request', piece, offset: 0, length: want.length });
    await until('the piece', () => b.frames.some((f) => f.type === 'piece'));
    const got = b.frames.find((f) => f.type === 'piece');
    expect(got?.type === 'piece' && got.data.equals(want)).toBe(true);
  });

  it('downloads a tree of more files than it may hold open, byte-identical, never above the limit', async () => {
    // 12 files of 5 pieces each, at most 2 open. (How scattered the pieces come is the
    // scheduler's choice here: peer-partial-tree-open-files.test.ts scatters them on purpose.)
    const many = join(fx.dir, 'many');
    for (let i = 0; i < 12; i++) {
      await mkdir(join(many, `d${i % 2}`), { recursive: true });
      await writeFile(join(many, `d${i % 2}`, `f${i}.bin`), randomBytes(5 * 16 * 1024 - i));
    }
    const tree = await createTreeManifest(many, { pieceSize: 16 * 1024, workers: 1 });
    const server = await serveSource(new TreePieceSource(many, wholeTreePages(tree.manifest)), tree.fileId);
    const root = join(fx.dir, 'many-down');
    const handle = downloadTree({
      manifest: tree.manifest,
      fileId: tree.fileId,
      root,
      selected: tree.manifest.files!.keys(),
      identity: fx.client,
      ticket: await ticket({ file: tree.fileId }),
      seeders: [{ peerId: fx.seeder.peerId, address: { host: '127.0.0.1', port: server.port }, score: 1 }],
      maxOpenFiles: 2,
    });
    await handle.done;
    const open = handle.openFiles();
    expect(open.max).toBe(2);
    expect(open.peak).toBeLessThanOrEqual(2);
    for (const f of tree.manifest.files!) {
      const at = (dir: string) => readFile(join(dir, ...f.path.split('/')));
      expect((await at(root)).equals(await at(many)), f.path).toBe(true);
    }
  });
});
