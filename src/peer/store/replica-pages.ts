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
 * A replica's manifest as peer.db keeps it (schema 8): a single file's whole,
 * in replicas.manifest_json as before; a folder's cut into the canonical
 * pages the tracker keeps and sends (protocol/manifest-pages.ts), the root in
 * manifest_json and each page in replica_pages, numbered in the root's order
 * (file pages, then piece pages). So a folder of 100,000 files is about 40
 * rows of at most 1 MiB, not one multi-MiB row read and parsed whole, and a
 * reader (the scrub) takes one page at a time. Each page read is checked
 * against its hash in the root.
 */
export interface StoredManifest {
  size: number;
  pieceSize: number;
  pieceCount: number;
  /** The whole manifest, assembled and checked (serving needs it whole). */
  whole(): Manifest;
  /** The tree's files, one page at a time; a single file has none. */
  filePages(): Iterable<TreeEntry[]>;
  /** The hash of piece i (reads its piece page when another is held). */
  piece(index: number): string;
}

const fail = (why: string): never => {
  throw new CoterieError('INVALID_MANIFEST', `peer.db: ${why}`);
};

/** Writes a replica's manifest pages (replacing any it had); the text for its manifest_json. */
export function writeManifestPages(
  db: Database.Database,
  groupId: string,
  fileId: string,
  manifest: Manifest,
): string {
  deleteManifestPages(db, groupId, fileId);
  if (manifest.files === undefined) return JSON.stringify(manifest);
  const { root, pages } = pagesOf(manifest);
  const insert = db.prepare(
    'INSERT INTO replica_pages (group_id, file_id, page_no, body) VALUES (?, ?, ?, ?)',
  );
  // pagesOf lists a page once per place in the root (file pages, then piece pages), as numbered here.
  pages.forEach((p, i) => {
    insert.run(groupId, fileId, i, JSON.stringify(p.page));
  });
  return JSON.stringify(root);
}

export function deleteManifestPages(db: Database.Database, groupId: string, fileId: string): void {
  db.prepare('DELETE FROM replica_pages WHERE group_id = ? AND file_id = ?').run(groupId, fileId);
}

/** A replica's manifest from its manifest_json (and, for a folder, its pages, read as asked). */
export function storedManifest(
  db: Database.Database,
  groupId: string,
  fileId: string,
  json: string,
): StoredManifest {
  const value = JSON.parse(json) as { filePages?: unknown };
  if (value.filePages === undefined) {
    const m = validateManifest(value);
    return {
      size: m.size,
      pieceSize: m.pieceSize,
      pieceCount: m.pieces.length,
      whole: () => m,
      filePages: () => [],
      piece: (i) => m.pieces[i] ?? fail(`no piece ${i}`),
    };
  }
  const root = validateRoot(value);
  const read = db.prepare(
    'SELECT body FROM replica_pages WHERE group_id = ? AND file_id = ? AND page_no = ?',
  );
  const hashes = [...root.filePages, ...root.piecePages];
  const page = (no: number): ManifestPage => {
    const row = read.get(groupId, fileId, no) as { body: string } | undefined;
    if (row === undefined) return fail(`page ${no} of ${fileId.slice(0, 12)} is missing`);
    const p = JSON.parse(row.body) as ManifestPage;
    if (pageHash(p) !== hashes[no]) fail(`page ${no} of ${fileId.slice(0, 12)} does not match its hash`);
    return p;
  };
  let held: { no: number; pieces: string[] } | undefined;
  return {
    size: root.size,
    pieceSize: root.pieceSize,
    pieceCount: root.pieceCount,
    whole: () => wholeOf(root, hashes, page),
    *filePages() {
      for (let no = 0; no < root.filePages.length; no++) {
        const p = page(no);
        if (p.kind !== 'files') fail(`page ${no} of ${fileId.slice(0, 12)} is not a file page`);
        else yield p.files;
      }
    },
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

function wholeOf(root: ManifestRoot, hashes: string[], page: (no: number) => ManifestPage): Manifest {
  const byHash = new Map<string, ManifestPage>();
  hashes.forEach((h, no) => {
    if (!byHash.has(h)) byHash.set(h, page(no));
  });
  return assembleManifest(root, (h) => byHash.get(h));
}

/**
 * Schema 8's conversion: each folder replica's manifest_json (its whole
 * manifest) becomes its root and pages, one row at a time; a row that does not
 * parse is left as it was (the daemon finds it unusable at start and drops it).
 */
export function pageExistingReplicas(db: Database.Database): void {
  const keys = db.prepare('SELECT group_id, file_id FROM replicas').all() as {
    group_id: string;
    file_id: string;
  }[];
  const one = db.prepare('SELECT manifest_json FROM replicas WHERE group_id = ? AND file_id = ?');
  const update = db.prepare('UPDATE replicas SET manifest_json = ? WHERE group_id = ? AND file_id = ?');
  for (const k of keys) {
    const { manifest_json } = one.get(k.group_id, k.file_id) as { manifest_json: string };
    if (!manifest_json.includes('"files":')) continue;
    let manifest: Manifest;
    try {
      manifest = validateManifest(JSON.parse(manifest_json));
    } catch {
      continue;
    }
    update.run(writeManifestPages(db, k.group_id, k.file_id, manifest), k.group_id, k.file_id);
  }
}
