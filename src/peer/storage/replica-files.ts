import { lstatSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { type Manifest, treeLayout } from '../../protocol/manifest.js';

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

export function replicaFiles(path: string, manifest: Manifest): ReplicaFile[] {
  if (manifest.files === undefined) {
    return [{ path, size: manifest.size, firstPiece: 0, pieceCount: manifest.pieces.length }];
  }
  const { firstPiece } = treeLayout(manifest);
  return manifest.files.map((f, k) => ({
    path: join(path, ...f.path.split('/')),
    size: f.size,
    firstPiece: firstPiece[k]!,
    pieceCount: firstPiece[k + 1]! - firstPiece[k]!,
  }));
}

/**
 * Why a replica cannot be served as it is on disk (a file gone, not a
 * regular file, or of another size), or undefined when every file is in
 * place. Sizes only: the scrub re-hashes the bytes.
 */
export function replicaProblem(path: string, manifest: Manifest): string | undefined {
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
