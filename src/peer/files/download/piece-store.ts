import type { Clock } from '../../../wire/index.js';
import { DOWNLOAD_DEFAULTS, type DownloadOptions } from './options.js';
import { openPartialFile, type PartialFile } from './partial-file.js';

/**
 * Where a download puts its verified pieces and reads them back (to serve
 * them): a partial file at `dest` (partial-file.ts), or a folder's tree of
 * them (partial-tree.ts). Piece numbers are the share's.
 */
export type PieceStore = Pick<
  PartialFile,
  'hasPiece' | 'verifiedCount' | 'resumedPieces' | 'directBytes' | 'writePiece' | 'read' | 'finish' | 'close'
>;

/** The download's store: its own (`openStore`), else the partial file at `dest`. */
export function openPieceStore(
  o: DownloadOptions,
  hashPiece: (data: Buffer) => Promise<string>,
  clock: Clock,
): Promise<PieceStore> {
  if (o.openStore !== undefined) return o.openStore({ hashPiece });
  return openPartialFile({
    manifest: o.manifest,
    fileId: o.fileId,
    dest: o.dest,
    overwrite: o.overwrite ?? false,
    ...(o.destDir === undefined ? {} : { destDir: o.destDir }),
    directIo: o.directIo ?? DOWNLOAD_DEFAULTS.directIo,
    preallocate: o.preallocate ?? DOWNLOAD_DEFAULTS.preallocate,
    hashPiece,
    clock,
    ...(o.resumeIntervalMs === undefined ? {} : { resumeIntervalMs: o.resumeIntervalMs }),
  });
}
