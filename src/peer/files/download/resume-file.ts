import { constants as fsConstants } from 'node:fs';
import { Bitfield } from '../../../core/bitfield.js';
import { type Manifest, pieceCount } from '../../../protocol/manifest.js';
import type { DestinationDir } from './safe-open.js';

/**
 * `<dest>.part.resume`: the bitfield of a download's verified pieces, so that
 * a killed download resumes without refetching them. Written atomically
 * (a temp file created O_EXCL|O_NOFOLLOW, then renamed over the old one;
 * no fsync: pieces are re-checked on load), read without following a link.
 */

export const RESUME_FORMAT_VERSION = 1;

/** The resume file's JSON: small (a bitfield of ≤ 65,536 bits is ≤ 11 KiB base64). */
export interface ResumeState {
  version: 1;
  fileId: string;
  size: number;
  pieceSize: number;
  /** Verified pieces: a Bitfield's wire form (one bit each, most significant bit first), base64. */
  bitfield: string;
}

/** Larger than any resume file this version writes (a bitfield of MAX_PIECES, 128 KiB, in base64): anything bigger is not one. */
const MAX_RESUME_BYTES = 256 * 1024;

/** The names a download keeps beside its destination `name`. */
export interface PartNames {
  dest: string;
  part: string;
  resume: string;
  resumeTmp: string;
}

export const partNames = (name: string): PartNames => ({
  dest: name,
  part: `${name}.part`,
  resume: `${name}.part.resume`,
  resumeTmp: `${name}.part.resume.tmp`,
});

/** The kept pieces, or undefined (none, unreadable, or another file's: start over). */
export async function loadResume(
  dir: DestinationDir,
  names: PartNames,
  fileId: string,
  m: Manifest,
): Promise<Bitfield | undefined> {
  const h = await dir.openExisting(names.resume, fsConstants.O_RDONLY);
  if (h === undefined) return undefined;
  let state: Partial<ResumeState> | null;
  try {
    if ((await h.stat()).size > MAX_RESUME_BYTES) return undefined;
    state = JSON.parse(await h.readFile('utf8')) as Partial<ResumeState> | null;
  } catch {
    return undefined; // unreadable: start over
  } finally {
    await h.close();
  }
  const count = pieceCount(m.size, m.pieceSize);
  if (
    // Damaged (`null`, a number, a list…) or another file's: start over.
    typeof state !== 'object' ||
    state === null ||
    state.version !== RESUME_FORMAT_VERSION ||
    state.fileId !== fileId ||
    state.size !== m.size ||
    state.pieceSize !== m.pieceSize ||
    typeof state.bitfield !== 'string'
  ) {
    return undefined;
  }
  try {
    return Bitfield.fromBuffer(Buffer.from(state.bitfield, 'base64'), count);
  } catch {
    return undefined; // the wrong length, or bits past the last piece (never written): start over
  }
}

/** Writes the resume file; on any failure (a full disk, say) no temp file stays behind. */
export async function saveResume(dir: DestinationDir, names: PartNames, state: ResumeState): Promise<void> {
  // A temp file left by a crash, or a link planted there: unlink removes the name, never its target.
  await dir.unlink(names.resumeTmp);
  try {
    const h = await dir.create(names.resumeTmp, fsConstants.O_WRONLY);
    try {
      await h.writeFile(JSON.stringify(state));
    } finally {
      await h.close();
    }
    await dir.rename(names.resumeTmp, names.resume);
  } catch (err) {
    await dir.unlink(names.resumeTmp).catch(() => undefined);
    throw err;
  }
}
