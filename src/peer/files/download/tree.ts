import { EventEmitter } from 'node:events';
import { Bitfield } from '../../../core/bitfield.js';
import { CoterieError } from '../../../protocol/errors.js';
import { MANIFEST_VERSION, type Manifest, treeLayout } from '../../../protocol/manifest.js';
import { type Clock, type PieceSource, realClock } from '../../../wire/index.js';
import { download } from './engine.js';
import type {
  DownloadEvent,
  DownloadProgress,
  DownloadResult,
  DownloadSnapshot,
  PieceDistribution,
  SeederInfo,
} from './events.js';
import type { DownloadHandle, DownloadOptions } from './options.js';
import {
  openTreeRoot,
  restoreExecutable,
  treeFileState,
  treeFileTarget,
  writeEmptyFile,
} from './tree-dest.js';

/**
 * A folder download: the selected files of a tree manifest, each fetched by
 * the ordinary engine (download()) as a file of its own whose pieces are a
 * window of the share's (pieces never span files), a few files at a time,
 * into `<root>/<path>`. Unselected files are never opened: 0 bytes on disk.
 * `select()` widens the selection while it runs. The files' engines share a
 * ticket while it is fresh. Each file keeps its own part
 * and resume files, so a stopped folder download resumes file by file; a file
 * already at its place with its size was finished by an earlier run.
 */
export interface TreeDownloadOptions
  extends Omit<DownloadOptions, 'manifest' | 'dest' | 'window' | 'destDir' | 'signal'> {
  manifest: Manifest;
  /** The folder's directory (made here unless `resuming`). */
  root: string;
  /** Indices into manifest.files to fetch. */
  selected: Iterable<number>;
  resuming?: boolean;
  /** Files fetched at once (default PARALLEL_FILES). */
  parallelFiles?: number;
}

export interface TreeDownloadHandle extends DownloadHandle {
  /** Adds files (indices into manifest.files) to the selection; false once the download has ended. */
  select(files: Iterable<number>): boolean;
}

/** Files fetched at once: each file's engine has a fixed cost (dial, handshake), so small files overlap. */
const PARALLEL_FILES = 8;
/**
 * How long one ticket serves the engines of newly started files: a folder is
 * one share, so one ticket admits every file of it (tickets live 10 minutes;
 * an engine plans its renewal from when it got one, so it must be fresh).
 */
const TICKET_REUSE_MS = 30_000;

export function downloadTree(options: TreeDownloadOptions): TreeDownloadHandle {
  return new TreeDownload(options);
}

/** `get` shared by the files' engines: one tracker call per TICKET_REUSE_MS, not one per file. */
export function sharedTicket(get: () => Promise<string>, clock: Clock): () => Promise<string> {
  let cached: { at: number; ticket: Promise<string> } | undefined;
  return () => {
    const now = clock.now();
    if (cached === undefined || now - cached.at > TICKET_REUSE_MS) {
      const mine = { at: now, ticket: get() };
      cached = mine;
      mine.ticket.catch(() => {
        if (cached === mine) cached = undefined;
      });
    }
    return cached.ticket;
  };
}

class TreeDownload extends EventEmitter<{ event: [DownloadEvent] }> implements TreeDownloadHandle {
  readonly done: Promise<DownloadResult>;
  readonly pieceSource: PieceSource;
  #resolve!: (r: DownloadResult) => void;
  #reject!: (e: CoterieError) => void;
  readonly #o: TreeDownloadOptions;
  readonly #queue: number[] = [];
  readonly #wanted = new Set<number>();
  readonly #running = new Map<number, DownloadHandle>();
  readonly #seeders: SeederInfo[];
  readonly #results: DownloadResult[] = [];
  readonly #clock: Clock;
  readonly #getTicket: (() => Promise<string>) | undefined;
  readonly #startedAt: number;
  #doneBytes = 0;
  /** Files at their place (fetched now or by an earlier run): every piece of theirs is verified. */
  readonly #doneFiles = new Set<number>();
  #rootReady = false;
  #finished = false;

  constructor(o: TreeDownloadOptions) {
    super();
    this.#o = o;
    // The same clock as each file's engine (options.clock), so tests see one time.
    this.#clock = o.clock ?? realClock;
    this.#getTicket = o.getTicket === undefined ? undefined : sharedTicket(o.getTicket, this.#clock);
    this.#startedAt = this.#clock.now();
    this.#seeders = [...o.seeders];
    // Files of a folder being fetched are not offered to the swarm piece by piece (yet): an empty source.
    this.pieceSource = emptySource(o.manifest);
    this.done = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.done.catch(() => undefined);
    this.select(o.selected);
    void this.#start();
  }

  async #start(): Promise<void> {
    try {
      await openTreeRoot(this.#o.root, this.#o.resuming === true);
      this.#rootReady = true;
      this.#pump();
    } catch (err) {
      this.#fail(CoterieError.from(err, 'DOWNLOAD_FAILED'));
    }
  }

  select(files: Iterable<number>): boolean {
    if (this.#finished) return false;
    for (const k of files) {
      if (this.#wanted.has(k) || this.#o.manifest.files?.[k] === undefined) continue;
      this.#wanted.add(k);
      this.#queue.push(k);
    }
    this.#queue.sort((a, b) => a - b);
    this.#pump();
    return true;
  }

  #pump(): void {
    if (this.#finished || !this.#rootReady) return;
    const parallel = this.#o.parallelFiles ?? PARALLEL_FILES;
    while (this.#running.size < parallel && this.#queue.length > 0) void this.#fetch(this.#queue.shift()!);
    if (this.#running.size === 0 && this.#queue.length === 0) this.#complete();
  }

  async #fetch(k: number): Promise<void> {
    const { manifest } = this.#o;
    const entry = manifest.files![k]!;
    // Held while the file is looked at, so that the pump does not take the folder for complete.
    const placeholder = { abort() {} } as unknown as DownloadHandle;
    this.#running.set(k, placeholder);
    try {
      const target = await treeFileTarget(this.#o.root, entry.path);
      if ((await treeFileState(target, entry.size)) === 'absent') {
        if (entry.size === 0) await writeEmptyFile(target);
        else this.#results.push(await this.#fetchFile(k, target));
        if (entry.executable === true) await restoreExecutable(target);
      }
      this.#doneBytes += entry.size;
      this.#doneFiles.add(k);
      this.#running.delete(k);
      this.#emitProgress();
      this.#pump();
    } catch (err) {
      this.#running.delete(k);
      this.#fail(CoterieError.from(err, 'DOWNLOAD_FAILED'));
    }
  }

  #fetchFile(k: number, target: string): Promise<DownloadResult> {
    if (this.#finished)
      return Promise.reject(new CoterieError('DOWNLOAD_FAILED', 'the folder download stopped'));
    const { manifest, root: _, selected: __, resuming: ___, parallelFiles: ____, ...engine } = this.#o;
    const { firstPiece } = treeLayout(manifest);
    const first = firstPiece[k]!;
    const count = firstPiece[k + 1]! - first;
    const entry = manifest.files![k]!;
    const handle = download({
      ...engine,
      manifest: {
        version: MANIFEST_VERSION,
        size: entry.size,
        pieceSize: manifest.pieceSize,
        pieces: manifest.pieces.slice(first, first + count),
      },
      ...(this.#getTicket === undefined ? {} : { getTicket: this.#getTicket }),
      dest: target,
      seeders: this.#seeders,
      window: { first, total: manifest.pieces.length },
      onEvent: (e) => {
        if (e.type === 'progress') this.#emitProgress();
        else if (e.type !== 'started' && e.type !== 'completed' && e.type !== 'failed') this.#emit(e);
      },
    });
    this.#running.set(k, handle);
    return handle.done;
  }

  addSeeder(seeder: SeederInfo): void {
    if (this.#seeders.some((s) => s.peerId === seeder.peerId)) return;
    this.#seeders.push(seeder);
    for (const h of this.#running.values()) h.addSeeder?.(seeder);
  }

  progress(): DownloadProgress {
    const files = this.#o.manifest.files!;
    let totalBytes = 0;
    for (const k of this.#wanted) totalBytes += files[k]!.size;
    const running = [...this.#running.values()].flatMap((h) => (h.progress ? [h.progress()] : []));
    const verifiedBytes = this.#doneBytes + running.reduce((n, p) => n + p.verifiedBytes, 0);
    const rate = running.reduce((n, p) => n + p.rateBytesPerSec, 0);
    return {
      fileId: this.#o.fileId,
      totalBytes,
      verifiedBytes,
      piecesVerified: running.reduce((n, p) => n + p.piecesVerified, 0),
      pieceCount: this.#o.manifest.pieces.length,
      rateBytesPerSec: rate,
      etaSeconds: rate > 0 ? Math.ceil((totalBytes - verifiedBytes) / rate) : null,
      elapsedMs: this.#clock.now() - this.#startedAt,
      peers: running.flatMap((p) => p.peers),
    };
  }

  /** progress() with the share's verified pieces: done files whole, running files from their engines. */
  snapshot(): DownloadSnapshot {
    const { manifest } = this.#o;
    const { firstPiece } = treeLayout(manifest);
    const bits = new Bitfield(manifest.pieces.length);
    for (const k of this.#doneFiles) for (let p = firstPiece[k]!; p < firstPiece[k + 1]!; p++) bits.set(p);
    for (const [k, h] of this.#running) {
      if (typeof h.snapshot !== 'function') continue; // the placeholder while a file is looked at
      const own = Bitfield.fromBuffer(h.snapshot().bitfield, firstPiece[k + 1]! - firstPiece[k]!);
      for (let p = 0; p < own.length; p++) if (own.has(p)) bits.set(firstPiece[k]! + p);
    }
    return { ...this.progress(), bitfield: bits.toBuffer() };
  }

  abort(reason = 'download cancelled'): void {
    this.#fail(new CoterieError('DOWNLOAD_FAILED', reason));
  }

  #complete(): void {
    if (this.#finished) return;
    this.#finished = true;
    const result: DownloadResult = {
      fileId: this.#o.fileId,
      dest: this.#o.root,
      bytes: this.progress().totalBytes,
      durationMs: this.#clock.now() - this.#startedAt,
      distribution: mergeDistributions(this.#results.map((r) => r.distribution)),
      directBytes: this.#results.reduce((n, r) => n + r.directBytes, 0),
    };
    this.#emit({ type: 'progress', progress: this.progress() });
    this.#emit({ type: 'completed', result });
    this.#resolve(result);
  }

  #fail(error: CoterieError): void {
    if (this.#finished) return;
    this.#finished = true;
    const running = [...this.#running.values()];
    for (const h of running) h.abort(error.message);
    // Each file's engine saves its resume state as it stops; the folder's promise waits for them.
    void Promise.allSettled(running.map((h) => h.done)).then(() => {
      this.#emit({ type: 'failed', error });
      this.#reject(error);
    });
  }

  #emitProgress(): void {
    this.#emit({ type: 'progress', progress: this.progress() });
  }

  #emit(e: DownloadEvent): void {
    try {
      this.#o.onEvent?.(e);
      this.emit('event', e);
    } catch {
      // A listener's bug must not break the download.
    }
  }
}

/** The pieces each peer served over all the files of a folder. */
function mergeDistributions(all: PieceDistribution[]): PieceDistribution {
  const peers = new Map<string, PieceDistribution['peers'][number]>();
  for (const d of all) {
    for (const p of d.peers) {
      const had = peers.get(p.peerId);
      if (had === undefined) peers.set(p.peerId, { ...p });
      else {
        had.pieces += p.pieces;
        had.bytes += p.bytes;
        had.corruptPieces += p.corruptPieces;
        had.stalls += p.stalls;
        had.finalScore = p.finalScore;
        had.state = p.state;
      }
    }
  }
  const list = [...peers.values()];
  const served = list.map((p) => p.pieces).filter((n) => n > 0);
  const byScore = new Map<number, { score: number; peers: number; pieces: number }>();
  for (const d of all) {
    for (const b of d.byScore) {
      const had = byScore.get(b.score) ?? { score: b.score, peers: 0, pieces: 0 };
      had.peers = Math.max(had.peers, b.peers);
      had.pieces += b.pieces;
      byScore.set(b.score, had);
    }
  }
  return {
    fetchedPieces: all.reduce((n, d) => n + d.fetchedPieces, 0),
    resumedPieces: all.reduce((n, d) => n + d.resumedPieces, 0),
    min: served.length === 0 ? 0 : Math.min(...served),
    max: served.length === 0 ? 0 : Math.max(...served),
    avg: served.length === 0 ? 0 : served.reduce((a, b) => a + b, 0) / served.length,
    peers: list,
    byScore: [...byScore.values()].sort((a, b) => a.score - b.score),
  };
}

function emptySource(manifest: Manifest): PieceSource {
  return {
    manifest,
    bitfield: new Bitfield(manifest.pieces.length),
    read: () =>
      Promise.reject(new CoterieError('PIECE_UNAVAILABLE', 'not served while the folder downloads')),
    on: () => undefined,
    off: () => undefined,
  };
}
