import { createHash } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { PeerStore } from '../../src/peer/store/index.js';
import { MIGRATIONS } from '../../src/peer/store/migrations.js';
import { type Manifest, validateManifest } from '../../src/protocol/manifest.js';

/**
 * Builds DIR/peer.db as a coterie of schema `version` left it: that schema's tables, and the rows
 * `seed` inserts (in that schema's columns). Opening a PeerStore on DIR then migrates it.
 */
export function peerDbAt(dir: string, version: number, seed: (db: Database.Database) => void): void {
  const db = new Database(join(dir, 'peer.db'));
  try {
    for (const sql of MIGRATIONS.slice(0, version)) db.exec(sql);
    seed(db);
    db.pragma(`user_version = ${version}`);
  } finally {
    db.close();
  }
}

/** Opens the PeerStore of DIR (migrating its peer.db), uses it and closes it, pass or fail. */
export function withPeerStore<T>(dir: string, use: (store: PeerStore) => T): T {
  const store = new PeerStore(dir);
  try {
    return use(store);
  } finally {
    store.close();
  }
}

/** Spoils page 0 of every manifest in a page table (replica_pages, share_pages): a path's digit changes. */
export function spoilFirstPages(dir: string, table: string): void {
  const db = new Database(join(dir, 'peer.db'));
  try {
    db.prepare(`UPDATE ${table} SET body = replace(body, '000001', '000002') WHERE page_no = 0`).run();
  } finally {
    db.close();
  }
}

/** The rows a query returns from DIR/peer.db, read apart from the store (read only). */
export function peerDbRows(dir: string, sql: string): unknown[] {
  const db = new Database(join(dir, 'peer.db'), { readonly: true });
  try {
    return db.prepare(sql).all();
  } finally {
    db.close();
  }
}

/**
 * A folder manifest of `n` files of 1 to 40 KiB (1 to 3 pieces of 16 KiB each), so that its
 * pages of both kinds are several; the hashes are made up (no bytes behind them).
 */
export function folderManifest(n: number): Manifest {
  const piece = 16 * 1024;
  const hex = (s: string) => createHash('sha256').update(s).digest('hex');
  const files = Array.from({ length: n }, (_, i) => ({
    path: `dir/${String(i).padStart(6, '0')}`,
    size: 1 + ((i * 7919) % 40_000),
  }));
  const pieces: string[] = [];
  for (const f of files) for (let at = 0; at < f.size; at += piece) pieces.push(hex(`${f.path}@${at}`));
  const size = files.reduce((a, f) => a + f.size, 0);
  return validateManifest({ version: 2, size, pieceSize: piece, pieces, files });
}
