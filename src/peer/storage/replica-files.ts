import { lstatSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pieceCount } from '../../protocol/manifest.js';
import type { StoredManifest } from '../store/index.js';

/**
 * The files on disk a replica is made of: a single file's replica is one
 * file at its path; a folder share's (a tree manifest) is a directory at
 * that path holding each file of the tree at its relative path, each with
 * its window of the share's pieces (pieces never span files).
 */
export interface ReplicaFile {
  path: string;
  size: number;
  /** The share's piece index of the file's first piece, and how many it has. */
  firstPiece: number;
  pieceCount: number;
}

/** A replica's files, a folder's read from its manifest one page at a time. */
export function* replicaFiles(path: string, manifest: StoredManifest): Generator<ReplicaFile> {
  let firstPiece = 0;
  let folder = false;
  for (const page of manifest.filePages()) {
    folder = true;
    for (const f of page) {
      const count = pieceCount(f.size, manifest.pieceSize);
      yield { path: join(path, ...f.path.split('/')), size: f.size, firstPiece, pieceCount: count };
      firstPiece += count;
    }
  }
  if (!folder) yield { path, size: manifest.size, firstPiece: 0, pieceCount: manifest.pieceCount };
}

/**
 * Why a replica cannot be served as it is on disk (a file gone, not a
 * regular file, or of another size), or undefined when every file is in
 * place. Sizes only: the scrub re-hashes the bytes.
 */
export function replicaProblem(path: string, manifest: StoredManifest): string | undefined {
  for (const f of replicaFiles(path, manifest)) {
    const st = lstatSync(f.path, { throwIfNoEntry: false });
    if (st === undefined) return `${f.path} is gone`;
    if (!st.isFile() || st.size !== f.size) return `${f.path} changed`;
  }
  return undefined;
}

/**
 * Deletes a replica's file, or a folder replica's whole directory, and what a
 * fetch of it left: a single file's part and resume files lie beside it (a
 * folder's are inside its directory).
 */
export function removeReplica(path: string): void {
  for (const name of [path, `${path}.part`, `${path}.part.resume`, `${path}.part.resume.tmp`]) {
    rmSync(name, { recursive: true, force: true });
  }
}
