import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import { definedOnly } from '../core/defined-only.js';
import { CoterieError, type ErrorCode } from '../protocol/errors.js';
import type { Clock, ClockTimer } from './clock.js';
import {
  type CloseInfo,
  CONNECTION_DEFAULTS,
  type FramedConnectionIo,
  type FramedConnectionOptions,
} from './connection-options.js';
import { type DecodeResult, encodeFrame, encodeFrameChunks, type Frame, FrameDecoder } from './frames.js';
import { PacedWriter } from './paced-writer.js';
import { type LinkThrottle, ThrottleWaits } from './throttle.js';

export {
  type CloseInfo,
  CONNECTION_DEFAULTS,
  type FramedConnectionIo,
  type FramedConnectionOptions,
} from './connection-options.js';

interface ConnectionEvents {
  frame: [Frame];
  close: [CloseInfo];
}

/**
 * Frames over any Duplex (a TLS socket, a TCP socket, or an in-memory pair
 * in tests). Use one of two ways to receive: the 'frame' event (frames that
 * arrived before the first listener are handed to it first, in order), or
 * async iteration (frames queue, and the stream pauses when the queue is
 * full). Not both on one connection. Nothing here throws out of the event loop: a broken stream
 * closes the connection with a reject frame carrying the reason and a 'close'
 * event carrying the error.
 */
export class FramedConnection extends EventEmitter<ConnectionEvents> {
  readonly stream: Duplex;
  readonly #options: Required<FramedConnectionOptions>;
  readonly #decoder: FrameDecoder;
  readonly #io: FramedConnectionIo;
  readonly #queue: Frame[] = [];
  #wake: (() => void) | null = null;
  #closeInfo: CloseInfo | null = null;
  /** A failure (not a requested close): async iteration rethrows it. */
  #failure: CoterieError | null = null;
  #closing = false;
  readonly #clock: Clock;
  #lastSentMs: number;
  #lastReceivedMs: number;
  #timer: ClockTimer | null = null;
  #closeTimer: ClockTimer | null = null;
  readonly #done: Promise<CloseInfo>;
  #resolveDone!: (info: CloseInfo) => void;
  /** Waits on the bandwidth limits (throttle.ts); undefined: none apply to this connection. */
  #waits: ThrottleWaits | undefined;
  /** A seeder's sends, sliced and paced once a throttle gates them (paced-writer.ts). */
  #writer: PacedWriter | undefined;
  /** Over TLS: a block's header and data go as two writes, each encrypted where it lies (see write()). */
  readonly #tls: boolean;

  constructor(stream: Duplex, options: FramedConnectionOptions = {}, io: FramedConnectionIo = {}) {
    super();
    this.stream = stream;
    this.#tls = stream instanceof TLSSocket;
    this.#io = io;
    this.#options = { ...CONNECTION_DEFAULTS, ...definedOnly(options) };
    this.#clock = this.#options.clock;
    this.#lastSentMs = this.#clock.now();
    this.#lastReceivedMs = this.#lastSentMs;
    this.#decoder = new FrameDecoder({
      maxFrameLength: this.#options.maxFrameLength,
      ...(io.allocatePayload === undefined ? {} : { allocate: io.allocatePayload }),
    });
    this.#done = new Promise((resolve) => {
      this.#resolveDone = resolve;
    });
    this.setThrottle(io.throttle);
    io.reads?.attach({
      readTarget: () => this.#decoder.readTarget(),
      commit: (n) => this.#received(this.#decoder.commit(n)),
      push: (bytes) => this.#received(this.#decoder.push(bytes)),
    });
    stream.on('data', this.#onData);
    // Placed reads pause until attached; a net.Socket's resume() restarts them.
    if (io.reads) stream.resume();
    stream.on('end', this.#onEnd);
    stream.on('error', this.#onError);
    stream.on('close', this.#onStreamClose);
    // Frames that arrived before the first 'frame' listener wait in the queue: hand them over.
    (this as EventEmitter).on('newListener', (event: string | symbol) => {
      if (event === 'frame' && this.#queue.length > 0) queueMicrotask(() => this.#flushToListeners());
    });
    this.#startTimer();
  }

  #flushToListeners(): void {
    while (this.#queue.length > 0 && this.listenerCount('frame') > 0)
      this.emit('frame', this.#queue.shift()!);
    if (this.#queue.length === 0 && this.stream.isPaused() && !this.closed && !this.#readsHeld())
      this.stream.resume();
  }

  /** Holds this connection to bandwidth limits from now on (a seeder's, once the ticket named the group). */
  setThrottle(throttle: LinkThrottle | undefined): void {
    this.#waits?.stop();
    this.#waits =
      throttle === undefined
        ? undefined
        : new ThrottleWaits(throttle, () => {
            if (!this.closed && this.#queue.length < this.#options.maxQueuedFrames) this.stream.resume();
          });
    if (throttle?.gates === 'up') this.#writer ??= new PacedWriter(this.stream, () => this.#waits?.throttle);
  }

  /** Sends wait for the upload limits, not for the peer: a slow block is no stall. */
  get heldByLimits(): boolean {
    return this.#writer?.heldByLimits === true;
  }

  /**
   * null when the upload limits let this connection send now; otherwise a
   * promise that resolves once they do (or the connection closes), shared by
   * every caller meanwhile, so connections over one limit take turns.
   */
  paced(): Promise<void> | null {
    return this.closed ? null : (this.#waits?.paced() ?? null);
  }

  #readsHeld(): boolean {
    return this.#waits?.holdingReads === true;
  }

  /** Resolves once the connection is closed, with why. */
  get done(): Promise<CloseInfo> {
    return this.#done;
  }

  get closed(): boolean {
    return this.#closing || this.#closeInfo !== null;
  }

  get closeInfo(): CloseInfo | null {
    return this.#closeInfo;
  }

  get maxFrameLength(): number {
    return this.#decoder.maxFrameLength;
  }

  set maxFrameLength(value: number) {
    this.#decoder.maxFrameLength = value;
  }

  /**
   * Writes one frame. Returns false when the stream's buffer is full: stop
   * writing and await drain() (or use send()). Throws UNAVAILABLE once closed.
   *
   * `onWritten`, when given, is called exactly once when the stream is done
   * with the frame's bytes: written out, or failed or destroyed (with the
   * error). Only then may a piece frame's data buffer be reused. When write
   * throws, the stream never saw the frame and onWritten is not called.
   */
  write(frame: Frame, onWritten?: (err?: Error | null) => void): boolean {
    if (this.closed) throw new CoterieError('UNAVAILABLE', 'connection closed');
    const chunks = encodeFrameChunks(frame);
    this.#lastSentMs = this.#clock.now();
    const piece = frame.type === 'piece';
    if (this.#writer?.holds(piece)) {
      const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      return this.#writer.write(bytes, onWritten, piece) && !this.stream.writableNeedDrain;
    }
    if (chunks.length === 1) return this.stream.write(chunks[0], onWritten);
    if (frame.type !== 'piece') return this.stream.write(Buffer.concat(chunks), onWritten);
    // A block is not copied here. Over plain TCP, corked, header and data leave in one writev. A
    // TLS socket would first concatenate a corked pair (a copy of the block): there the header and
    // the data are two writes, two records, each encrypted where it lies (a lent block, see
    // PieceSource.lend; writeEncoded() of a frame built in place is one record). The data chunk
    // is written last: its callback is the frame's.
    const corked = !this.#tls;
    if (corked) this.stream.cork();
    let ok = true;
    const last = chunks.length - 1;
    for (let i = 0; i < last; i++) ok = this.stream.write(chunks[i]);
    ok = this.stream.write(chunks[last], onWritten);
    if (corked) this.stream.uncork();
    return ok && !this.stream.writableNeedDrain;
  }

  /**
   * Writes bytes that are already one whole frame (see encodePieceFrameInPlace),
   * as one buffer; otherwise as write(). The bytes are not checked here.
   */
  writeEncoded(frame: Buffer, onWritten?: (err?: Error | null) => void): boolean {
    if (this.closed) throw new CoterieError('UNAVAILABLE', 'connection closed');
    this.#lastSentMs = this.#clock.now();
    const ok = this.#writer?.write(frame, onWritten, true) ?? this.stream.write(frame, onWritten);
    return ok && !this.stream.writableNeedDrain;
  }

  /** Writes one frame and waits for the stream to drain if its buffer is full. */
  async send(frame: Frame): Promise<void> {
    if (!this.write(frame)) await this.drain();
  }

  /** Resolves when the stream can take more; rejects with UNAVAILABLE as soon as the connection starts closing. */
  drain(): Promise<void> {
    if (this.closed) return Promise.reject(new CoterieError('UNAVAILABLE', 'connection closed'));
    if (this.#writer?.busy) return this.#writer.idle().then(() => this.drain());
    if (!this.stream.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onDrain = () => {
        this.#drainWaiters.delete(onClosing);
        resolve();
      };
      const onClosing = () => {
        this.stream.off('drain', onDrain);
        reject(new CoterieError('UNAVAILABLE', 'connection closed while waiting to send'));
      };
      this.stream.once('drain', onDrain);
      this.#drainWaiters.add(onClosing);
    });
  }

  /** Senders blocked in drain(): released (rejected) the moment the connection starts closing. */
  readonly #drainWaiters = new Set<() => void>();

  #releaseDrainWaiters(): void {
    for (const w of this.#drainWaiters) w();
    this.#drainWaiters.clear();
    this.#waits?.stop();
    this.#writer?.stop(false);
  }

  /**
   * Closes the connection: with a code, first tells the peer why (a
   * connection reject), then ends the stream; destroys it if it does not
   * flush within closeTimeoutMs. Resolves when closed.
   */
  close(code?: ErrorCode, reason = ''): Promise<CloseInfo> {
    if (this.closed) return this.#done;
    const error = code === undefined ? null : new CoterieError(code, reason || code);
    this.#shutdown(error, false, code === undefined ? null : { code, reason: reason || code });
    return this.#done;
  }

  /** Tears the stream down at once (no reject sent). */
  destroy(error: CoterieError | null = null): void {
    if (this.#closeInfo !== null) return;
    this.#closing = true;
    this.stream.destroy();
    this.#finish({ remote: false, error });
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Frame, void, undefined> {
    for (;;) {
      const frame = this.#queue.shift();
      if (frame !== undefined) {
        if (this.#queue.length <= this.#options.maxQueuedFrames / 2 && this.stream.isPaused()) {
          if (!this.closed && !this.#readsHeld()) this.stream.resume();
        }
        yield frame;
        continue;
      }
      if (this.#closeInfo !== null || this.#closing) {
        if (this.#failure !== null) throw this.#failure;
        return;
      }
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  #deliver(frame: Frame): void {
    if (this.listenerCount('frame') > 0 && this.#queue.length === 0) {
      this.emit('frame', frame);
      return;
    }
    this.#queue.push(frame);
    if (this.#queue.length >= this.#options.maxQueuedFrames) this.stream.pause();
    this.#wakeReader();
  }

  #wakeReader(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  readonly #onData = (chunk: Buffer): void => {
    if (!this.closed) this.#received(this.#decoder.push(chunk));
  };

  /** Delivers what the decoder made of new bytes; false when reading should pause (queue full). */
  #received({ frames, error }: DecodeResult): boolean {
    if (this.closed) return true; // keep reading to the peer's end, which completes the close
    this.#lastReceivedMs = this.#clock.now();
    for (const f of frames) {
      if (this.closed) return true;
      this.#deliver(f);
    }
    if (error !== null && !this.closed) this.#fail(error, false);
    if (this.#waits?.afterRead() === true && !this.closed) this.stream.pause();
    return !this.stream.isPaused();
  }

  readonly #onEnd = (): void => {
    const truncated = this.#decoder.end();
    if (truncated !== null) this.#fail(truncated, true);
    else this.#shutdown(null, true, null);
  };

  readonly #onError = (err: Error): void => {
    const error =
      err instanceof CoterieError
        ? err
        : new CoterieError('UNAVAILABLE', `connection lost: ${err.message}`, { cause: err });
    // Destroyed first: #finish may hand a partly received frame's buffer back (see freePayload).
    this.stream.destroy();
    if (this.#closeInfo === null) {
      this.#failure = error;
      this.#finish({ remote: true, error });
    }
  };

  readonly #onStreamClose = (): void => {
    // The stream went away without 'end' (reset, destroy): an unplanned close unless we were closing.
    if (this.#closeInfo === null) this.#finish({ remote: !this.#closing, error: this.#failure });
  };

  /** A failure: tell the peer why, then close; async iteration rethrows it. */
  #fail(error: CoterieError, remote: boolean): void {
    this.#failure = error;
    this.#shutdown(error, remote, { code: error.code, reason: error.message });
  }

  #shutdown(error: CoterieError | null, remote: boolean, reject: { code: ErrorCode; reason: string } | null) {
    if (this.closed) return;
    this.#closing = true;
    this.#pendingClose = { remote, error };
    this.#stopTimer();
    // The frame being paced out is finished first: the reject must follow a whole frame.
    this.#writer?.stop(true);
    if (reject !== null && this.stream.writable) {
      try {
        this.stream.write(encodeFrame({ type: 'reject', request: null, ...reject }));
      } catch {
        // The stream is already failing: the close below still happens.
      }
    }
    this.stream.end();
    // A peer that never ends its side must not hold the socket open forever.
    this.#closeTimer = this.#clock.setTimeout(() => this.stream.destroy(), this.#options.closeTimeoutMs);
    this.#wakeReader();
    this.#releaseDrainWaiters();
    // Otherwise the stream's 'close' (#onStreamClose) completes the close.
    if (this.stream.destroyed) this.#finish({ remote, error });
  }

  #pendingClose: CloseInfo | null = null;

  #finish(info: CloseInfo): void {
    if (this.#closeInfo !== null) return;
    const final = this.#pendingClose ?? info;
    this.#closeInfo = final;
    this.#closing = true;
    this.#stopTimer();
    this.#closeTimer?.cancel();
    this.#closeTimer = null;
    this.stream.off('data', this.#onData);
    // A frame cut off by the close: its buffer goes back to whoever allocated it, now that the
    // stream (and a placed read into that buffer) is gone for good.
    const partial = this.#decoder.abandon();
    if (partial !== null && this.stream.destroyed) this.#io.freePayload?.(partial);
    // Keep an error listener: a late error on a dead stream must not crash the process.
    this.stream.off('error', this.#onError);
    this.stream.on('error', ignore);
    this.#wakeReader();
    this.#releaseDrainWaiters();
    this.emit('close', final);
    this.#resolveDone(final);
  }

  #startTimer(): void {
    const { keepaliveIntervalMs, idleTimeoutMs } = this.#options;
    const periods = [keepaliveIntervalMs, idleTimeoutMs].filter((ms) => ms > 0);
    if (periods.length === 0) return;
    // Checking at a quarter of the shortest period keeps both deadlines within 25 %.
    const tickMs = Math.max(10, Math.floor(Math.min(...periods) / 4));
    this.#timer = this.#clock.setInterval(() => this.#tick(), tickMs);
  }

  #tick(): void {
    if (this.closed) return;
    const now = this.#clock.now();
    const { keepaliveIntervalMs, idleTimeoutMs } = this.#options;
    // While we do not read (our consumer is behind), the peer's silence is ours: not idle.
    if (this.stream.isPaused() || this.#queue.length > 0) this.#lastReceivedMs = now;
    if (idleTimeoutMs > 0 && now - this.#lastReceivedMs >= idleTimeoutMs) {
      this.#fail(
        new CoterieError('PROTOCOL_ERROR', `peer silent for ${Math.round(idleTimeoutMs / 1000)} s`),
        false,
      );
      return;
    }
    if (keepaliveIntervalMs > 0 && now - this.#lastSentMs >= keepaliveIntervalMs) {
      if (!this.stream.writableNeedDrain) this.write({ type: 'keepalive' });
      else this.#lastSentMs = now; // data is queued: the peer will hear from us anyway
    }
  }

  #stopTimer(): void {
    this.#timer?.cancel();
    this.#timer = null;
  }
}

function ignore(): void {}
