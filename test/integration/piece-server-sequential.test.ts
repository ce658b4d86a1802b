import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { createTreeManifest } from '../../src/core/tree-manifest.js';
import { downloadTree } from '../../src/peer/files/download/index.js';
import { wholeTreePages } from '../../src/peer/files/tree-pages.js';
import { TreePieceSource } from '../../src/peer/files/tree-source.js';
import type { Manifest } from '../../src/protocol/manifest.js';
import { createIdentity, type PeerIdentity } from '../../src/wire/index.js';
import { spreadOf } from '../../src/wire/spread.js';
import { haves, type PieceClient } from '../helpers/piece-client.js';
import { servedFile } from '../helpers/served-file.js';
import { until } from '../helpers/wait.js';

// A downloader asking for file order (download_file --sequential) from a spreading seeder, in
// process over loopback TLS (issue 17).
//
// A spreading seeder shows each downloader a window of pieces starting where its round is, a
// random piece. Before the order frame, a sequential downloader was shown pieces 48..55 of 96
// first and got the file from the middle on: 48..95, then 0..47. Now it tells the seeder it
// fetches in order, is shown every piece, and gets them first and last first, then in order;
// downloaders that do not ask for order are still shown disjoint windows.

const MiB = 1024 * 1024;
const FILES = 96;
/** One piece per file, and a lone downloader's window of 32 MiB is 8 of them. */
const PIECE = 4 * MiB;
const WINDOW = 8;
/** Requests the sequential download keeps in flight (its scheduler's depth here), and a margin. */
const DEPTH = 4;
const MARGIN = DEPTH + 2;

const { file: fx, serveSource, ticket, connect } = servedFile('coterie-piece-seq-', 1000);
let root: string;
let manifest: Manifest;
let fileId: string;

beforeAll(async () => {
  root = join(fx.dir, 'tree');
  await mkdir(root, { recursive: true });
  for (let i = 0; i < FILES; i++) {
    await writeFile(join(root, `f${String(i).padStart(2, '0')}.bin`), randomBytes(4 * 1024 + i));
  }
  ({ manifest, fileId } = await createTreeManifest(root, { pieceSize: PIECE, workers: 1 }));
});

/** A seeder of the tree whose spreading round starts in the middle of it, at piece 48. */
async function seedFromTheMiddle() {
  const source = new TreePieceSource(root, wholeTreePages(manifest));
  const random = vi.spyOn(Math, 'random').mockReturnValue(0.5);
  try {
    spreadOf(source, FILES, PIECE);
  } finally {
    random.mockRestore();
  }
  return serveSource(source, fileId);
}

describe('a spreading seeder and a downloader in file order', () => {
  it('sends the pieces first and last first, then in order, byte-identical', async () => {
    expect(manifest.pieces.length).toBe(FILES);
    const server = await seedFromTheMiddle();
    const dest = join(fx.dir, 'seq-down');
    const order: number[] = [];
    const handle = downloadTree({
      manifest,
      fileId,
      root: dest,
      selected: manifest.files!.keys(),
      identity: fx.client,
      ticket: await ticket({ file: fileId }),
      seeders: [{ peerId: fx.seeder.peerId, address: { host: '127.0.0.1', port: server.port }, score: 1 }],
      // Hashed in arrival order, a few requests at a time: the order they come in is observable.
      hashWorkers: 0,
      scheduler: {
        sequential: true,
        initialDepthBlocks: DEPTH,
        minDepthBlocks: DEPTH,
        maxDepthBlocks: DEPTH,
      },
      onEvent: (e) => {
        if (e.type === 'pieceVerified') order.push(e.piece);
      },
    });
    await handle.done;
    expect(order).toHaveLength(FILES);
    const at = new Map(order.map((piece, k) => [piece, k]));
    // The first and the last pieces first: a media player's header and index.
    expect(at.get(0)!).toBeLessThan(MARGIN);
    expect(at.get(FILES - 1)!).toBeLessThan(MARGIN);
    // Every other piece after all but the few asked for at once with it.
    for (let k = MARGIN; k < FILES - 1; k++) {
      for (let j = 0; j < k - MARGIN; j++)
        expect(at.get(j)!, `piece ${j} before ${k}`).toBeLessThan(at.get(k)!);
    }
    for (const f of manifest.files!) {
      const read = (dir: string) => readFile(join(dir, ...f.path.split('/')));
      expect((await read(dest)).equals(await read(root)), f.path).toBe(true);
    }
  });

  it('shows a downloader in order every piece, and the others still disjoint windows', async () => {
    const server = await seedFromTheMiddle();
    const open = (who: PeerIdentity) => connect(server.port, fileId, who);
    const bitfields = (c: PieceClient) =>
      c.frames.flatMap((f) => (f.type === 'bitfield' ? [f.bitfield] : []));

    // The downloader in order: its seeder names the feature, and answers the order frame with
    // every piece; a piece outside the window it was shown first is served.
    const seq = await open(fx.client);
    const hello = seq.frames[0];
    expect(hello?.type === 'hello' && hello.ticket).toBe('order.ping.spread');
    seq.conn.write({ type: 'order' });
    await until('the answer to order', () => bitfields(seq).length === 2);
    expect(bitfields(seq)[0]!.isEmpty()).toBe(true);
    expect(bitfields(seq)[1]!.isComplete()).toBe(true);
    const length = manifest.files![0]!.size;
    seq.conn.write({ type: 'request', piece: 0, offset: 0, length });
    await until('piece 0 or a reject', () =>
      seq.frames.some((f) => f.type === 'piece' || f.type === 'reject'),
    );
    expect(seq.frames.find((f) => f.type === 'piece' || f.type === 'reject')).toMatchObject({
      type: 'piece',
      piece: 0,
    });

    // Two downloaders that do not ask for order: disjoint windows, as without it.
    const a = await open(fx.stranger);
    await until('a window for the first', () => haves(a).length >= WINDOW);
    const b = await open(await createIdentity());
    await until('a window for the second', () => haves(b).length >= WINDOW);
    const first = [haves(a).slice(0, WINDOW), haves(b).slice(0, WINDOW)];
    expect(new Set(first.flat()).size).toBe(2 * WINDOW);
    for (const c of [a, b]) expect(bitfields(c)).toHaveLength(1);
  });
});
