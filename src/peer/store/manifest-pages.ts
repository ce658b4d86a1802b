import type Database from 'better-sqlite3';
import { CoterieError } from '../../protocol/errors.js';
import { type Manifest, type TreeEntry, validateManifest } from '../../protocol/manifest.js';
import {
  assembleManifest,
  type ManifestPage,
  type ManifestRoot,
  PIECES_PER_PAGE,
  pageHash,
  pagesOf,
  validateRoot,
} from '../../protocol/manifest-pages.js';

/**
 * A manifest as peer.db keeps it, for a replica (schema 8) and for a share of
 * this peer (schema 9): a single file's whole, in its row's manifest_json; a
 * folder's cut into the canonical pages the tracker keeps and sends
 * (protocol/manifest-pages.ts), the root in manifest_json and each page in a
 * page table (replica_pages, share_pages), numbered in the root's order (file
 * pages, then piece pages). So a folder of 100,000 files is about 40 rows of
 * at most 1 MiB, not one multi-MiB row read and parsed whole, and a reader
 * (the scrub) takes one page at a time. Each page read is checked against its
 * hash in the root.
 */
export interface StoredManifest {
  /** A folder's (its pages hold a tree), not a single file's. */
  folder: boolean;
  size: number;
  pieceSize: number;
  pieceCount: number;
  /** The whole manifest, assembled and checked (serving needs it whole). */
  whole(): Manifest;
  /** The tree's files, one page at a time; a single file has none. */
  filePages(): Iterable<TreeEntry[]>;
  /** How many pages the tree's file list takes (0 for a single file). */
  filePageCount: number;
  /** Page `no` of the file list, read and checked against its hash now (serving reads it so). */
  filePage(no: number): TreeEntry[];
  /** The hash of piece i (reads its piece page when another is held). */
  piece(index: number): string;
}

const fail = (why: string): never => {
  throw new CoterieError('INVALID_MANIFEST', `peer.db: ${why}`);
};

/** A folder manifest's JSON (not a root's: a root has filePages, and no files). */
const isFolderJson = (json: string): boolean => json.includes('"files":');

/**
 * One page table: the manifests of the rows of `owner` (replicas, shares), keyed by the
 * owner's primary key columns `key`, each page a row of `table` under that key and a page_no.
 */
export class ManifestPages {
  private readonly where: string;

  constructor(
    private readonly db: Database.Database,
    private readonly table: string,
    private readonly owner: string,
    private readonly key: readonly string[],
  ) {
    this.where = key.map((c) => `${c} = ?`).join(' AND ');
  }

  /** Writes an owner row's manifest pages (replacing any it had); the text for its manifest_json. */
  write(key: readonly unknown[], manifest: Manifest): string {
    this.delete(key);
    if (manifest.files === undefined) return JSON.stringify(manifest);
    const { root, pages } = pagesOf(manifest);
    const insert = this.db.prepare(
      `INSERT INTO ${this.table} (${this.key.join(', ')}, page_no, body) VALUES (${this.key.map(() => '?').join(', ')}, ?, ?)`,
    );
    // pagesOf lists a page once per place in the root (file pages, then piece pages), as numbered here.
    pages.forEach((p, i) => {
      insert.run(...key, i, JSON.stringify(p.page));
    });
    return JSON.stringify(root);
  }

  delete(key: readonly unknown[]): void {
    this.db.prepare(`DELETE FROM ${this.table} WHERE ${this.where}`).run(...key);
  }

  /** The owner row's manifest (undefined when there is no such row), its pages read as asked. */
  read(key: readonly unknown[]): StoredManifest | undefined {
    const row = this.db.prepare(`SELECT manifest_json FROM ${this.owner} WHERE ${this.where}`).get(...key) as
      | { manifest_json: string }
      | undefined;
    return row === undefined ? undefined : this.stored(key, row.manifest_json);
  }

  private stored(key: readonly unknown[], json: string): StoredManifest {
    const value = JSON.parse(json) as { filePages?: unknown };
    if (value.filePages === undefined) {
      const m = validateManifest(value);
      return {
        folder: m.files !== undefined,
        size: m.size,
        pieceSize: m.pieceSize,
        pieceCount: m.pieces.length,
        whole: () => m,
        filePages: () => (m.files === undefined ? [] : [m.files]),
        filePageCount: m.files === undefined ? 0 : 1,
        filePage: (no) => (no === 0 && m.files !== undefined ? m.files : fail(`no file page ${no}`)),
        piece: (i) => m.pieces[i] ?? fail(`no piece ${i}`),
      };
    }
    const root = validateRoot(value);
    const read = this.db.prepare(`SELECT body FROM ${this.table} WHERE ${this.where} AND page_no = ?`);
    // The file id is the root's hash, which names every page: any row of that id holds the same
    // pages. A folder served for a while outlives the row it was read from when another group
    // shares the same tree (stop_share in one group keeps serving it for the other).
    const fileId = this.key[this.key.length - 1]!;
    const anyRow = this.db.prepare(
      `SELECT body FROM ${this.table} WHERE ${fileId} = ? AND page_no = ? LIMIT 1`,
    );
    const hashes = [...root.filePages, ...root.piecePages];
    const name = String(key[key.length - 1]).slice(0, 12);
    const page = (no: number): ManifestPage => {
      const row = (read.get(...key, no) ?? anyRow.get(key[key.length - 1], no)) as
        | { body: string }
        | undefined;
      if (row === undefined) return fail(`page ${no} of ${name} is missing`);
      let p: ManifestPage | undefined;
      try {
        p = JSON.parse(row.body) as ManifestPage;
        if (pageHash(p) !== hashes[no]) p = undefined;
      } catch {
        // Not JSON, or not a page's shape (altered on disk): what a hash mismatch says too.
      }
      return p ?? fail(`page ${no} of ${name} does not match its hash`);
    };
    const filePage = (no: number): TreeEntry[] => {
      if (!(no >= 0 && no < root.filePages.length)) return fail(`no file page ${no} of ${name}`);
      const p = page(no);
      return p.kind === 'files' ? p.files : fail(`page ${no} of ${name} is not a file page`);
    };
    let held: { no: number; pieces: string[] } | undefined;
    return {
      folder: true,
      size: root.size,
      pieceSize: root.pieceSize,
      pieceCount: root.pieceCount,
      whole: () => wholeOf(root, hashes, page),
      *filePages() {
        for (let no = 0; no < root.filePages.length; no++) yield filePage(no);
      },
      filePageCount: root.filePages.length,
      filePage,
      piece(index) {
        const no = root.filePages.length + Math.floor(index / PIECES_PER_PAGE);
        if (held?.no !== no) {
          const p = page(no);
          held = { no, pieces: p.kind === 'pieces' ? p.pieces : fail(`page ${no} is not a piece page`) };
        }
        return held.pieces[index % PIECES_PER_PAGE] ?? fail(`no piece ${index}`);
      },
    };
  }

  /**
   * A schema conversion: each owner row whose manifest_json is a folder's whole manifest becomes
   * its root and pages, one row at a time; a row that does not parse is left as it was (the
   * daemon finds it unusable when it reads it, and drops or skips it).
   */
  pageExisting(): void {
    const cols = this.key.join(', ');
    const keys = this.db.prepare(`SELECT ${cols} FROM ${this.owner}`).raw().all() as unknown[][];
    const one = this.db.prepare(`SELECT manifest_json FROM ${this.owner} WHERE ${this.where}`).pluck();
    const update = this.db.prepare(`UPDATE ${this.owner} SET manifest_json = ? WHERE ${this.where}`);
    for (const k of keys) {
      const json = one.get(...k) as string;
      if (!isFolderJson(json)) continue;
      let manifest: Manifest;
      try {
        manifest = validateManifest(JSON.parse(json));
      } catch {
        continue;
      }
      update.run(this.write(k, manifest), ...k);
    }
  }
}

function wholeOf(root: ManifestRoot, hashes: string[], page: (no: number) => ManifestPage): Manifest {
  const byHash = new Map<string, ManifestPage>();
  hashes.forEach((h, no) => {
    if (!byHash.has(h)) byHash.set(h, page(no));
  });
  return assembleManifest(root, (h) => byHash.get(h));
}

/** The page tables of peer.db: a replica's pages by (group, file id), a share's by its key. */
export const replicaPages = (db: Database.Database): ManifestPages =>
  new ManifestPages(db, 'replica_pages', 'replicas', ['group_id', 'file_id']);
export const sharePages = (db: Database.Database): ManifestPages =>
  new ManifestPages(db, 'share_pages', 'shares', ['group_id', 'file_name', 'file_id']);
