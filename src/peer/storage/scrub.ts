import { open } from 'node:fs/promises';
import type { Logger } from 'pino';
import { Pacer } from '../../core/pacer.js';
import { hashPiece } from '../../core/piece-hash.js';
import type { PeerStore, ReplicaRecord, StoredManifest } from '../store/index.js';
import { type ReplicaFile, replicaFiles } from './replica-files.js';

/**
 * The scrub: re-hashes every held replica (each file of a folder's), piece by piece, at most
 * `bytesPerSec` (so serving and fetching keep the disk), one pass after
 * another with a pause between; a piece whose hash no longer matches, or a
 * file gone or shortened, is reported through `onLost`.
 */
export interface Scrubber {
  /** What it checks now and how far a full pass got. */
  status(): { passes: number; checking: string | null; lastPassAt: number | null };
  stop(): void;
}

export interface ScrubOptions {
  store: PeerStore;
  bytesPerSec: number;
  onLost: (groupId: string, fileId: string, why: 'corrupt' | 'missing') => void;
  log: Logger;
  /** Rest between passes (default 10 min: a pass reads every replica once). */
  pauseMs?: number;
  /** Waits `ms` (a timer by default; tests count the waits). */
  sleep?: (ms: number) => Promise<void>;
}

export function startScrub(options: ScrubOptions): Scrubber {
  const { store, log } = options;
  let stopped = false;
  let passes = 0;
  let lastPassAt: number | null = null;
  let checking: string | null = null;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref()));
  // Paced over the pass, not piece by piece: a folder of small files had each of its pieces
  // wait out a timer of its own (about 1 ms, whatever the few microseconds it owed).
  const pacer = new Pacer(options.bytesPerSec);

  /** Verifies one replica; answers why it is lost, or undefined when intact (or dropped meanwhile). */
  const check = async (rec: ReplicaRecord): Promise<'corrupt' | 'missing' | undefined> => {
    const manifest = store.replicas.manifest(rec.groupId, rec.fileId);
    if (manifest === undefined) return undefined; // dropped meanwhile
    const buf = Buffer.alloc(manifest.pieceSize);
    // A folder replica is checked file by file, each against its window of the share's pieces,
    // its manifest read a page at a time as the files and pieces come.
    for (const file of replicaFiles(rec.path, manifest)) {
      const lost = await checkFile(rec, file, manifest, buf);
      if (lost !== undefined || stopped || dropped(rec)) return lost;
    }
    return undefined;
  };

  const dropped = (rec: ReplicaRecord) => !store.replicas.has(rec.groupId, rec.fileId);

  const checkFile = async (
    rec: ReplicaRecord,
    file: ReplicaFile,
    manifest: StoredManifest,
    buf: Buffer,
  ): Promise<'corrupt' | 'missing' | undefined> => {
    let fh: Awaited<ReturnType<typeof open>>;
    try {
      fh = await open(file.path, 'r');
    } catch {
      return 'missing';
    }
    try {
      if ((await fh.stat()).size !== file.size) return 'corrupt';
      for (let j = 0; j < file.pieceCount && !stopped; j++) {
        const { pieceSize } = manifest;
        const len = Math.min(pieceSize, file.size - j * pieceSize);
        const { bytesRead } = await fh.read(buf, 0, len, j * pieceSize);
        if (bytesRead !== len || hashPiece(buf.subarray(0, len)) !== manifest.piece(file.firstPiece + j))
          return 'corrupt';
        const due = pacer.delayFor(len, Date.now());
        if (due >= 1) await sleep(due);
        if (dropped(rec)) return undefined;
      }
      return undefined;
    } finally {
      await fh.close();
    }
  };

  const loop = async () => {
    while (!stopped) {
      for (const rec of store.replicas.list()) {
        if (stopped) return;
        checking = `${rec.groupId}/${rec.fileId}`;
        const lost = await check(rec).catch((err: unknown) => {
          log.warn({ err, fileId: rec.fileId }, 'scrub could not read a replica');
          return 'missing' as const;
        });
        if (lost !== undefined && !stopped && !dropped(rec)) {
          log.warn({ groupId: rec.groupId, fileId: rec.fileId, lost }, 'scrub found a damaged replica');
          options.onLost(rec.groupId, rec.fileId, lost);
        }
      }
      checking = null;
      passes++;
      lastPassAt = Date.now();
      await sleep(options.pauseMs ?? 600_000);
    }
  };
  void loop();

  return {
    status: () => ({ passes, checking, lastPassAt }),
    stop() {
      stopped = true;
    },
  };
}
