import { createHash, randomBytes } from 'node:crypto';
import { choosePieceSize, computeFileId, type Manifest, pieceCount } from '../../src/protocol/manifest.js';

export const sha = (s: string) => createHash('sha256').update(s).digest('hex');
export const randomPeerId = () => randomBytes(32).toString('hex');

/**
 * A valid manifest for `size` bytes whose piece hashes derive from `seed`
 * (no file behind it: for the tracker, which never reads one).
 */
export function fakeManifest(
  seed: string,
  size = 300_000,
  pieceSize = choosePieceSize(size),
): { manifest: Manifest; fileId: string } {
  const pieces = Array.from({ length: pieceCount(size, pieceSize) }, (_, i) => sha(`${seed}/${i}`));
  const manifest: Manifest = { version: 1, size, pieceSize, pieces };
  return { manifest, fileId: computeFileId(manifest) };
}
