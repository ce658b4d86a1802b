import { EventEmitter } from 'node:events';
import { existsSync, constants as fsConstants } from 'node:fs';
import { type FileHandle, open, readlink, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { Bitfield } from '../../core/bitfield.js';
import { CoterieError } from '../../protocol/errors.js';
import type { TreeEntry } from '../../protocol/manifest.js';
import type { PieceSource } from '../../wire/index.js';
import { CACHED_FILE_PAGES, type TreeFilePages, TreePageIndex } from './tree-pages.js';

/** Files of a tree kept open at once: a 100,000-file folder must not take 100,000 descriptors. */
const OPEN_FILES = 32;
const HAS_PROC_FD = process.platform === 'linux' && existsSync('/proc/self/fd');

export interface TreeSourceOptions {
  /** File pages kept decoded (CACHED_FILE_PAGES by default). */
  cachedPages?: number;
}

/**
 * A folder share as a PieceSource: piece i is a range of one file of the tree
 * (pieces never span files), found through the page of the file list that
 * covers it (tree-pages.ts): the tree's manifest is not held whole, only a
 * few of its pages. Files are opened when first read, a few at a time (least
 * recently used closed first). A file whose size is no longer the manifest's
 * is not served: its pieces are refused (PIECE_UNAVAILABLE), not the
 * connection ended (NOT_SHARING), since a folder download is one connection
 * and the tree's other files still serve. So is a piece whose page cannot be
 * read (altered in peer.db: INVALID_MANIFEST).
 *
 * Nor is a file reached through a symbolic link: whoever can write in the
 * shared folder could swap a file, or a directory of the tree, for a link to
 * a file of the user's of the same size, and its bytes would go to the group
 * (the downloaders' hash check refuses them, after they have read them). A file
 * is opened with O_NOFOLLOW, and the path the kernel gives for the open
 * descriptor must be the one the manifest names under the folder's real path.
 */
export class TreePieceSource extends EventEmitter<{ have: [number] }> implements PieceSource {
  readonly bitfield: Bitfield;
  readonly pieceCount: number;
  readonly pieceSize: number;
  /** Where each piece lies; its pageReads count the pages decoded. */
  readonly index: TreePageIndex;
  readonly #root: string;
  #realRoot: Promise<string> | undefined;
  readonly #open = new Map<number, Promise<FileHandle>>();
  #closed = false;

  /** Reads each file page once (the index), then only those the pieces asked for need. */
  constructor(root: string, pages: TreeFilePages, options: TreeSourceOptions = {}) {
    super();
    this.setMaxListeners(0);
    this.#root = root;
    this.index = new TreePageIndex(pages, options.cachedPages ?? CACHED_FILE_PAGES);
    this.pieceCount = this.index.pieceCount;
    this.pieceSize = this.index.pieceSize;
    this.bitfield = Bitfield.full(this.pieceCount);
  }

  pieceLength(piece: number): number {
    return this.index.pieceLength(piece);
  }

  async read(piece: number, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    if (this.#closed) throw new CoterieError('PIECE_UNAVAILABLE', 'the folder is no longer served');
    const at = this.index.locate(piece);
    const start = at === undefined ? 0 : (piece - at.firstPiece) * this.pieceSize;
    const pieceBytes = at === undefined ? 0 : Math.min(this.pieceSize, at.file.size - start);
    if (at === undefined || offset < 0 || length < 0 || offset + length > pieceBytes) {
      throw new CoterieError('PIECE_OUT_OF_RANGE', `block ${piece}:${offset}+${length} outside the piece`);
    }
    const fh = await this.#handle(at.index, at.file);
    const buf = into ?? Buffer.allocUnsafe(length);
    const position = start + offset;
    let got = 0;
    while (got < length) {
      const { bytesRead } = await fh.read(buf, got, length - got, position + got);
      if (bytesRead === 0)
        throw new CoterieError('PIECE_UNAVAILABLE', 'a file of the folder is shorter than shared');
      got += bytesRead;
    }
    return buf;
  }

  #handle(k: number, file: TreeEntry): Promise<FileHandle> {
    const hit = this.#open.get(k);
    if (hit !== undefined) {
      // Most recently used last.
      this.#open.delete(k);
      this.#open.set(k, hit);
      return hit;
    }
    const opening = (async () => {
      const parts = file.path.split('/');
      const path = join(this.#root, ...parts);
      const fh = await open(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW).catch((err: Error) => {
        throw new CoterieError(
          'PIECE_UNAVAILABLE',
          `${file.path} of the shared folder cannot be read: ${err.message}`,
        );
      });
      try {
        this.#realRoot ??= realpath(this.#root);
        const expected = join(await this.#realRoot, ...parts);
        // What was opened, as the kernel names it (no link left in it); without /proc, the name's
        // resolution now, a narrower check.
        const opened = await (HAS_PROC_FD ? readlink(`/proc/self/fd/${fh.fd}`) : realpath(path));
        if (opened !== expected)
          throw new CoterieError(
            'PIECE_UNAVAILABLE',
            `${file.path} is reached through a symbolic link: not served`,
          );
        const st = await fh.stat();
        if (!st.isFile() || st.size !== file.size)
          throw new CoterieError('PIECE_UNAVAILABLE', `${file.path} changed since the folder was shared`);
        return fh;
      } catch (err) {
        await fh.close();
        if (err instanceof CoterieError) throw err;
        throw new CoterieError(
          'PIECE_UNAVAILABLE',
          `${file.path} of the shared folder: ${(err as Error).message}`,
        );
      }
    })();
    opening.catch(() => this.#open.delete(k));
    this.#open.set(k, opening);
    while (this.#open.size > OPEN_FILES) {
      const [oldest, fh] = this.#open.entries().next().value as [number, Promise<FileHandle>];
      this.#open.delete(oldest);
      // Reads in flight on it finish first: closing waits a moment.
      void fh.then((h) => setTimeout(() => void h.close().catch(() => {}), 1_000)).catch(() => {});
    }
    return opening;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const all = [...this.#open.values()];
    this.#open.clear();
    for (const fh of all) await fh.then((h) => h.close()).catch(() => {});
  }
}
