import { EventEmitter } from 'node:events';
import type { Manifest } from '../../../protocol/manifest.js';
import { treeLayout } from '../../../protocol/manifest.js';
import { type PartialPieceSource, realClock } from '../../../wire/index.js';
import { download } from './engine.js';
import type {
  DownloadEvent,
  DownloadProgress,
  DownloadResult,
  DownloadSnapshot,
  SeederInfo,
  SeederWhere,
} from './events.js';
import { DOWNLOAD_DEFAULTS, type DownloadHandle, type DownloadOptions } from './options.js';
import { PartialTree } from './partial-tree.js';

/**
 * A folder download: one engine (download()) over the share's pieces, the
 * selected files' pieces wanted and the rest skipped, written file by file
 * into `<root>/<path>` (partial-tree.ts). Pieces never span files, so an
 * unselected file gets 0 bytes on disk, and the wire, the swarm's bitfields
 * and the scheduler all speak the share's piece numbers: rarest-first,
 * `--sequential`, α and β and the per-peer view work as for a file, and the
 * download serves its verified pieces like a file's. `select()` widens the
 * selection while it runs.
 */
export interface TreeDownloadOptions
  extends Omit<DownloadOptions, 'manifest' | 'dest' | 'destDir' | 'openStore' | 'wanted'> {
  manifest: Manifest;
  /** The folder's directory (made here unless `resuming`). */
  root: string;
  /** Indices into manifest.files to fetch. */
  selected: Iterable<number>;
  resuming?: boolean;
  /** Partial files open at once (partial-tree.ts; 64 by default). */
  maxOpenFiles?: number;
}

export interface TreeDownloadHandle extends DownloadHandle {
  /** Adds files (indices into manifest.files) to the selection; false once the download has ended. */
  select(files: Iterable<number>): boolean;
  /** The most partial files open at once so far, the limit, and how many were closed to make room. */
  openFiles(): { max: number; peak: number; evictions: number };
}

export function downloadTree(options: TreeDownloadOptions): TreeDownloadHandle {
  return new TreeDownload(options);
}

class TreeDownload extends EventEmitter<{ event: [DownloadEvent] }> implements TreeDownloadHandle {
  readonly done: Promise<DownloadResult>;
  readonly #manifest: Manifest;
  readonly #wanted = new Set<number>();
  readonly #store: PartialTree;
  readonly #engine: DownloadHandle;

  constructor(o: TreeDownloadOptions) {
    super();
    const { root, selected, resuming, manifest, maxOpenFiles, ...engine } = o;
    this.#manifest = manifest;
    this.#store = new PartialTree({
      manifest,
      fileId: o.fileId,
      root,
      resuming: resuming === true,
      clock: o.clock ?? realClock,
      directIo: o.directIo ?? DOWNLOAD_DEFAULTS.directIo,
      preallocate: o.preallocate ?? DOWNLOAD_DEFAULTS.preallocate,
      ...(o.resumeIntervalMs === undefined ? {} : { resumeIntervalMs: o.resumeIntervalMs }),
      ...(maxOpenFiles === undefined ? {} : { maxOpenFiles }),
    });
    this.#add(selected);
    const layout = treeLayout(manifest);
    this.#engine = download({
      ...engine,
      manifest,
      dest: root,
      openStore: ({ hashPiece }) => this.#store.open(hashPiece),
      wanted: (piece) => this.#wanted.has(layout.fileOfPiece(piece)),
      wantedBytes: () => {
        let n = 0;
        for (const k of this.#wanted) n += manifest.files![k]!.size;
        return n;
      },
      onEvent: (e) => {
        o.onEvent?.(e);
        this.emit('event', e);
      },
    });
    this.done = this.#engine.done;
  }

  get pieceSource(): PartialPieceSource {
    return this.#engine.pieceSource;
  }

  select(files: Iterable<number>): boolean {
    const added = this.#add(files);
    const { firstPiece } = treeLayout(this.#manifest);
    const pieces: number[] = [];
    for (const k of added) for (let p = firstPiece[k]!; p < firstPiece[k + 1]!; p++) pieces.push(p);
    return this.#engine.want!(pieces);
  }

  /** Files newly selected, told to the store (which looks at their places). */
  #add(files: Iterable<number>): number[] {
    const added: number[] = [];
    for (const k of files) {
      if (this.#wanted.has(k) || this.#manifest.files?.[k] === undefined) continue;
      this.#wanted.add(k);
      added.push(k);
    }
    this.#store.select(added);
    return added;
  }

  openFiles(): { max: number; peak: number; evictions: number } {
    return this.#store.openFiles;
  }

  retryDirect(): void {
    this.#engine.retryDirect();
  }

  seederMoved(peerId: string, where: SeederWhere): boolean {
    return this.#engine.seederMoved(peerId, where);
  }

  addSeeder(seeder: SeederInfo): void {
    this.#engine.addSeeder(seeder);
  }

  progress(): DownloadProgress {
    return this.#engine.progress();
  }

  snapshot(): DownloadSnapshot {
    return this.#engine.snapshot();
  }

  abort(reason?: string): void {
    this.#engine.abort(reason);
  }
}
