import { EventEmitter } from 'node:events';
import { availableParallelism } from 'node:os';
import type { Bitfield } from '../../../core/bitfield.js';
import { createScheduler, type Scheduler } from '../../../core/scheduler.js';
import { CoterieError } from '../../../protocol/errors.js';
import { pieceLength } from '../../../protocol/manifest.js';
import type { Clock, ClockTimer } from '../../../wire/index.js';
import { MAX_BLOCK_BYTES, realClock } from '../../../wire/index.js';
import type { DownloadEvent, DownloadProgress, DownloadResult, SeederInfo, SeederWhere } from './events.js';
import { giveUpError } from './give-up.js';
import { DOWNLOAD_DEFAULTS, type DownloadHandle, type DownloadOptions } from './options.js';
import { PiecePipeline } from './piece-pipeline.js';
import { openPieceStore, type PieceStore } from './piece-store.js';
import { distributionOf, ProgressMeter, progressOf } from './progress.js';
import { RecentPieces } from './recent-pieces.js';
import { type SeederLink, seederLinkOptions } from './seeder-link.js';
import { SeederLinks } from './seeder-links.js';
import { sendRequests } from './send-requests.js';
import { DownloadPieceSource } from './verified-pieces.js';

interface DownloadEmitterEvents {
  event: [DownloadEvent];
}

export function download(options: DownloadOptions): DownloadHandle {
  return new Download(options);
}

class Download extends EventEmitter<DownloadEmitterEvents> implements DownloadHandle {
  readonly done: Promise<DownloadResult>;
  #resolve!: (r: DownloadResult) => void;
  #reject!: (e: CoterieError) => void;
  readonly #o: DownloadOptions;
  readonly #peerId: string;
  readonly #count: number;
  readonly #scheduler: Scheduler;
  readonly #links: SeederLinks;
  readonly #pipeline: PiecePipeline;
  /** The pieces verified last, served from memory (recent-pieces.ts). */
  readonly #recent: RecentPieces;
  readonly #abort = new AbortController();
  readonly pieceSource: DownloadPieceSource;
  #file: PieceStore | null = null;
  #finished = false;
  #pumpQueued = false;
  #ticker: ClockTimer | null = null;
  readonly #clock: Clock;
  readonly #meter: ProgressMeter;
  #resumedPieces = 0;
  /** The progress at the end: the peers' figures are gone from the scheduler once connections close. */
  #final: DownloadProgress | null = null;

  constructor(o: DownloadOptions) {
    super();
    this.#o = o;
    this.#clock = o.clock ?? realClock;
    this.#meter = new ProgressMeter(this.#clock);
    this.#peerId = o.identity.peerId;
    this.#count = o.manifest.pieces.length;
    this.#recent = new RecentPieces(o.recentPiecesBytes ?? DOWNLOAD_DEFAULTS.recentPiecesBytes, (buf) =>
      this.#pipeline.recycle(buf),
    );
    this.pieceSource = new DownloadPieceSource(o.manifest, this.#count, this.#recent);
    this.done = new Promise<DownloadResult>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // Callers may follow events only; a rejection they do not await must not crash the process.
    this.done.catch(() => undefined);
    // One block per piece up to the largest block the wire allows: fewer frames, and a
    // whole-piece block is hashed and written without being copied.
    const blockSizeBytes = Math.min(o.scheduler?.blockSizeBytes ?? o.manifest.pieceSize, MAX_BLOCK_BYTES);
    this.#pipeline = new PiecePipeline({
      manifest: o.manifest,
      dest: o.dest,
      blockSizeBytes,
      hashWorkers: o.hashWorkers ?? (availableParallelism() > 1 ? DOWNLOAD_DEFAULTS.hashWorkers : 0),
      maxPendingBytes: o.maxPendingWriteBytes ?? DOWNLOAD_DEFAULTS.maxPendingWriteBytes,
      // Kept before it is announced: the first requests for it find it in memory.
      onWritten: (piece, buf) => {
        const kept = this.#recent.keep(piece, buf);
        this.pieceSource.markHave(piece);
        return kept;
      },
      // Not awaited: #fail waits for the pending writes, this one among them.
      onWriteFailed: (err) => void this.#fail(err),
      onDrained: () => this.#schedulePump(),
    });
    // Until the partial file is open nothing is known to be verified; the scheduler is rebuilt then.
    this.#scheduler = createScheduler({ ...o.scheduler, blockSizeBytes })({
      pieces: { count: this.#count, length: (i) => pieceLength(o.manifest, i) },
      clock: this.#clock,
      ...(o.wanted === undefined ? {} : { skip: (i: number) => !o.wanted!(i) }),
    });
    this.#links = this.#seederLinks();
    this.pieceSource.on('have', (piece) => {
      for (const link of this.#links.values()) if (link.ready) link.client?.tellHave(piece);
    });
    if (o.signal?.aborted) queueMicrotask(() => this.abort('download cancelled'));
    else o.signal?.addEventListener('abort', () => this.abort('download cancelled'), { once: true });
    void this.#start();
  }

  // ---- lifecycle -----------------------------------------------------------

  async #start(): Promise<void> {
    try {
      const file = await openPieceStore(this.#o, (data) => this.#pipeline.hasher.hash(data), this.#clock);
      if (this.#finished) {
        await file.close();
        return;
      }
      this.#file = file;
      this.pieceSource.attach(file);
      this.#resumedPieces = file.resumedPieces;
      // The scheduler read `have` before the file was open: tell it what is kept.
      for (let i = 0; i < this.#count; i++) if (file.hasPiece(i)) this.#keep(i);
      this.#emit({
        type: 'started',
        fileId: this.#o.fileId,
        totalBytes: this.#totalBytes(),
        pieceCount: this.#count,
        resumedPieces: file.resumedPieces,
      });
      if (this.#scheduler.isComplete()) {
        await this.#complete();
        return;
      }
      if (this.#o.seeders.length === 0 && this.#links.size === 0) {
        throw new CoterieError('NO_SEEDERS', 'no seeder listed for this file: retry when one is online');
      }
      for (const s of this.#o.seeders) this.addSeeder(s);
      // Seeders added with addSeeder() while the file was opening connect now.
      this.#links.connectWaiting();
      this.#ticker = this.#clock.setInterval(() => this.#tick(), this.#o.tickMs ?? DOWNLOAD_DEFAULTS.tickMs);
    } catch (err) {
      await this.#fail(CoterieError.from(err, 'DOWNLOAD_FAILED'));
    }
  }

  /** A piece found verified in the store (kept from an earlier run): counted, never fetched. */
  #keep(i: number): void {
    if (this.#scheduler.isVerified(i)) return;
    this.#meter.kept(pieceLength(this.#o.manifest, i));
    this.#scheduler.pieceVerified('', i);
    this.pieceSource.markHave(i);
  }

  want(pieces: Iterable<number>): boolean {
    if (this.#finished) return false;
    this.#scheduler.want(pieces);
    this.#schedulePump();
    return true;
  }

  #totalBytes(): number {
    return this.#o.wantedBytes?.() ?? this.#o.manifest.size;
  }

  abort(reason = 'download cancelled'): void {
    void this.#fail(new CoterieError('DOWNLOAD_FAILED', reason));
  }

  async #complete(): Promise<void> {
    if (this.#finished) return;
    this.#finished = true;
    // Measured before the connections close (closing marks their peers gone).
    const distribution = distributionOf(this.#scheduler.peers(), this.#resumedPieces);
    const progress = this.progress();
    this.#final = progress;
    // The swarm's reads of our pieces wait for the share the finished file becomes.
    this.pieceSource.ended();
    this.#stopAll();
    try {
      await this.#file!.finish();
    } catch (err) {
      const e = CoterieError.from(err, 'DOWNLOAD_FAILED');
      this.#emit({ type: 'failed', error: e });
      this.#reject(e);
      return;
    }
    const result: DownloadResult = {
      fileId: this.#o.fileId,
      dest: this.#o.dest,
      bytes: this.#totalBytes(),
      durationMs: this.#meter.elapsedMs(),
      distribution,
      directBytes: this.#file!.directBytes,
    };
    this.#emit({ type: 'progress', progress });
    this.#emit({ type: 'completed', result });
    this.#resolve(result);
  }

  async #fail(error: CoterieError): Promise<void> {
    if (this.#finished) return;
    this.#finished = true;
    this.#final = this.progress();
    this.pieceSource.handOver(null);
    this.#stopAll();
    await this.#pipeline.settled();
    await this.#file?.close().catch(() => undefined);
    this.#emit({ type: 'failed', error });
    this.#reject(error);
  }

  #stopAll(): void {
    this.#abort.abort();
    this.#pipeline.close();
    this.#recent.close();
    this.#ticker?.cancel();
    this.#ticker = null;
    this.#links.stop();
  }

  // ---- seeders -------------------------------------------------------------

  addSeeder(seeder: SeederInfo): void {
    if (this.#finished) return;
    if (seeder.peerId === this.#peerId) return; // never download from ourselves
    this.#links.add(seeder);
  }

  retryDirect(): void {
    if (!this.#finished) this.#links.retryDirect();
  }

  seederMoved(peerId: string, where: SeederWhere): boolean {
    return !this.#finished && this.#links.moved(peerId, where);
  }

  #seederLinks(): SeederLinks {
    const options = seederLinkOptions(this.#o, {
      clock: this.#clock,
      signal: this.#abort.signal,
      peerId: this.#peerId,
      pieceCount: this.#count,
      io: { allocatePayload: this.#pipeline.allocateFrame, freePayload: (b) => this.#pipeline.recycle(b) },
    });
    return new SeederLinks(options, {
      finished: () => this.#finished,
      started: () => this.#file !== null,
      isBanned: (id) => this.#scheduler.peers().some((p) => p.peerId === id && p.state === 'banned'),
      fail: (err) => void this.#fail(err),
      emit: (e) => this.#emit(e),
      ready: (link, upgraded) => {
        // A seeder learns what we hold, and each piece as we verify it (a spreading seeder shows
        // us what nobody holds yet).
        if (!this.pieceSource.bitfield.isEmpty()) link.client?.tellPieces(this.pieceSource.bitfield.clone());
        // An upgraded link (a direct client in a relayed one's place): the scheduler keeps the peer.
        // A spreading seeder holds every piece it has not shown us yet: no give-up for want of one.
        if (!upgraded) {
          this.#scheduler.addPeer(link.info.peerId, { score: link.info.score, whole: link.client?.spreads });
        }
        this.#emit({ type: upgraded ? 'peerUpgraded' : 'peerConnected', peerId: link.info.peerId });
      },
      inFlight: (l) => this.#scheduler.peers().find((p) => p.peerId === l.info.peerId)?.inFlightBlocks ?? 0,
      pieces: (link, pieces) => this.#onPieces(link, pieces),
      block: (link, piece, offset, data) => {
        this.#onBlock(link, piece, offset, data);
        this.#schedulePump();
      },
      rejected: (link, piece, kind) => {
        this.#scheduler.requestRejected(link.info.peerId, piece, kind);
        this.#schedulePump();
      },
      closed: (link) => this.#scheduler.removePeer(link.info.peerId),
      givenUp: () => this.#checkGiveUp('starved'),
      pump: () => this.#schedulePump(),
    });
  }

  /** The seeder's bitfield, or a have: the scheduler learns what it holds. */
  #onPieces(link: SeederLink, pieces: Bitfield | number): void {
    const id = link.info.peerId;
    if (typeof pieces === 'number') this.#scheduler.peerHasPiece(id, pieces);
    else this.#scheduler.setPeerPieces(id, (i) => pieces.has(i));
    this.#schedulePump();
  }

  #onBlock(link: SeederLink, piece: number, offset: number, data: Buffer): void {
    const out = this.#scheduler.blockReceived(link.info.peerId, piece, offset, data.length);
    if (out.kind !== 'accepted') {
      this.#pipeline.recycle(data);
      return;
    }
    const whole = this.#pipeline.assemble(link.info.peerId, piece, offset, data, out.attemptComplete);
    if (whole) this.#pieceArrived(link, piece, whole);
  }

  /** A whole piece is here: hash it (on a worker thread when there is one). */
  #pieceArrived(link: SeederLink, piece: number, buf: Buffer): void {
    this.#pipeline.hash(buf).then(
      (digest) => {
        if (!this.#finished) this.#pieceHashed(link, piece, buf, digest);
        this.#schedulePump();
      },
      (err: unknown) => {
        if (!this.#finished) void this.#fail(CoterieError.from(err, 'INTERNAL'));
      },
    );
  }

  /** Verified: write it; wrong hash: strike its sender for that piece (banned at the threshold). */
  #pieceHashed(link: SeederLink, piece: number, buf: Buffer, digest: string): void {
    const id = link.info.peerId;
    if (digest !== this.#o.manifest.pieces[piece]) {
      this.#pipeline.recycle(buf);
      // Hashes finish after the ban for pieces already received: one ban, one reason.
      if (link.lastError?.code === 'CORRUPT_PIECE') return;
      const outcome = this.#scheduler.pieceCorrupt(id, piece);
      if (outcome.kind === 'ignored') return;
      // The seeder learns which piece failed here: it may re-check its file (and stop serving a changed one).
      link.client?.reportCorrupt(piece);
      this.#emit({ type: 'peerStruck', peerId: id, piece, strikes: outcome.strikes });
      if (outcome.kind === 'banned') {
        link.givenUp = true;
        link.lastError = new CoterieError('CORRUPT_PIECE', outcome.reason);
        this.#emit({ type: 'peerBanned', peerId: id, reason: outcome.reason });
        link.client?.close('CORRUPT_PIECE', outcome.reason);
      }
      return;
    }
    link.failures = 0;
    if (this.#scheduler.isVerified(piece)) {
      this.#pipeline.recycle(buf); // an endgame duplicate that lost the race
      return;
    }
    this.#scheduler.pieceVerified(id, piece);
    this.#meter.verified(buf.length);
    this.#pipeline.write(this.#file!, piece, buf);
    this.#emit({ type: 'pieceVerified', piece, peerId: id });
  }

  /** A piece only struck seeders hold, none reachable, or no seeder left: the download gives up (give-up.ts). */
  #checkGiveUp(why: 'struck' | 'unreachable' | 'starved'): void {
    if (this.#finished || !this.#file) return;
    const facts = {
      links: this.#links,
      scheduler: this.#scheduler,
      pieceCount: this.#count,
      dest: this.#o.dest,
      writing: this.#pipeline.writing,
      sinceVerifiedMs: this.#clock.now() - this.#meter.lastVerifiedAt,
      noProgressTimeoutMs: this.#o.noProgressTimeoutMs ?? DOWNLOAD_DEFAULTS.noProgressTimeoutMs,
    };
    const error = giveUpError(why, facts);
    if (error) void this.#fail(error);
  }

  // ---- the pump: scheduler decisions to frames -------------------------------

  #schedulePump(): void {
    if (this.#pumpQueued || this.#finished) return;
    this.#pumpQueued = true;
    setImmediate(() => {
      this.#pumpQueued = false;
      this.#pump();
    });
  }

  #pump(): void {
    if (this.#finished || !this.#file) return;
    if (this.#scheduler.isComplete()) {
      if (this.#pipeline.writing === 0) void this.#complete();
      return;
    }
    if (this.#pipeline.full) return;
    const actions = this.#scheduler.poll();
    for (const d of actions.dropped) this.#pipeline.dropAttempt(d.piece, d.peerId);
    for (const id of actions.stalled) this.#emit({ type: 'peerStalled', peerId: id });
    sendRequests(actions, (peerId) => this.#links.get(peerId)?.client);
    const failure = this.#scheduler.failure();
    if (failure) void this.#fail(new CoterieError('DOWNLOAD_FAILED', failure.reason));
  }

  #tick(): void {
    this.#pump();
    this.#checkGiveUp('unreachable');
    this.#checkGiveUp('struck');
    if (
      this.#meter.tick(this.#clock.now(), this.#o.progressIntervalMs ?? DOWNLOAD_DEFAULTS.progressIntervalMs)
    ) {
      this.#emit({ type: 'progress', progress: this.progress() });
    }
  }

  // ---- reporting -------------------------------------------------------------

  /** DownloadHandle's snapshot(): progress() and a copy of the verified pieces' bitfield. */
  snapshot() {
    return { ...this.progress(), bitfield: this.pieceSource.bitfield.toBuffer() };
  }

  progress(): DownloadProgress {
    if (this.#final !== null) return this.#final;
    return progressOf({
      fileId: this.#o.fileId,
      totalBytes: this.#totalBytes(),
      pieceCount: this.#count,
      piecesVerified: this.#scheduler.verifiedCount(),
      meter: this.#meter,
      links: this.#links.values(),
      reports: this.#scheduler.peers(),
      unreachable: this.#scheduler.unreachablePieces(),
    });
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
