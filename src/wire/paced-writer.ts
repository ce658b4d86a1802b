/**
 * A seeder's sends under an upload limit, put on the wire a slice at a time
 * (a twentieth of a second of the rate; throttle.ts sliceBytes), each slice
 * waiting until the buckets are out of debt. Gating only whole blocks let a
 * round of them (4 blocks of 1 MiB in flight) leave at once and the debt be
 * paid after: at 1 MiB/s the wire carried 4 MiB bursts 4 s apart, and a 6 s
 * window measured 1.335 of the rate (bench limits.accuracy.up.1MiB).
 *
 * The stream stays one sequence of whole frames: a frame other than a piece
 * (keepalive, pong, reject, bitfield) waits only for the end of the frame in
 * progress, never behind the blocks queued after it, so a slow limit does not
 * starve the connection's keepalives. A frame in progress when the schedule
 * pauses uploads is finished (the pause holds the next block), for the same
 * reason. Each slice is written after the last one's callback: only then do
 * the socket's counters, which the buckets are charged from, include it.
 */
import type { Duplex } from 'node:stream';
import { CoterieError } from '../protocol/errors.js';
import type { ClockTimer } from './clock.js';
import type { LinkThrottle } from './throttle.js';

type Written = (err?: Error | null) => void;

const closed = () => new CoterieError('UNAVAILABLE', 'connection closed');

interface Queued {
  bytes: Buffer;
  /** Bytes of it handed to the stream so far. */
  sent: number;
  onWritten: Written | undefined;
  /** A piece frame: sliced and paced; anything else goes whole, at the next frame boundary. */
  paced: boolean;
  /** stop() wrote the rest of it with its callback. */
  handedOff?: boolean;
}

export class PacedWriter {
  readonly #queue: Queued[] = [];
  /** A slice is with the stream, its callback not called yet. */
  #writing = false;
  #timer: ClockTimer | null = null;
  #idle: (() => void)[] = [];
  #stopped = false;

  constructor(
    private readonly stream: Duplex,
    /** The connection's throttle now (none: frames go straight to the stream, once these are out). */
    private readonly throttleOf: () => LinkThrottle | undefined,
  ) {}

  /** Frames wait here: a sender waits for idle() before writing more. */
  get busy(): boolean {
    return this.#queue.length > 0;
  }

  /** Waiting for the limits (not for the stream): a slow block is then no stalled peer. */
  get heldByLimits(): boolean {
    return this.#timer !== null;
  }

  /**
   * Whether write() would keep this frame here rather than hand it straight to the stream: a
   * block under a limit, or anything behind frames that wait. The connection asks first, so that
   * an unlimited block keeps its copy-free path (its header and data are not joined for nothing).
   */
  holds(piece: boolean): boolean {
    if (this.#stopped) return false;
    return this.#queue.length > 0 || (piece && this.throttleOf()?.limitsUpload() === true);
  }

  /** Writes one whole frame; false when it waits here (await idle() before the next). */
  write(bytes: Buffer, onWritten: Written | undefined, piece: boolean): boolean {
    if (!this.holds(piece)) return this.stream.write(bytes, onWritten);
    const head = this.#queue[0];
    const item: Queued = { bytes, sent: 0, onWritten, paced: piece };
    if (piece) this.#queue.push(item);
    else {
      // Right after the frame in progress (or first), ahead of the blocks not yet started.
      let at = head !== undefined && head.sent > 0 ? 1 : 0;
      while (at < this.#queue.length && !this.#queue[at]!.paced) at++;
      this.#queue.splice(at, 0, item);
    }
    this.#pump();
    return this.#queue.length === 0;
  }

  /** Resolves once every frame given is with the stream (or the writer stopped). */
  idle(): Promise<void> {
    if (this.#queue.length === 0 || this.#stopped) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /**
   * The connection is closing. `finish`: the frame in progress is completed at once (a reject
   * written after it is then read as a frame); the frames not started are dropped, told so.
   */
  stop(finish: boolean): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#timer?.cancel();
    this.#timer = null;
    for (const item of this.#queue.splice(0)) {
      if (item.sent > 0 && finish && this.stream.writable) {
        item.handedOff = true;
        this.stream.write(item.bytes.subarray(item.sent), item.onWritten);
      } else if (!(item.sent > 0 && this.#writing)) {
        item.onWritten?.(closed());
      } // else its slice's callback tells it: the stream may be reading its buffer until then
    }
    this.#wakeIdle();
  }

  #pump(): void {
    if (this.#writing || this.#timer !== null || this.#stopped) return;
    const head = this.#queue[0];
    if (head === undefined) {
      this.#wakeIdle();
      return;
    }
    let length = head.bytes.length - head.sent;
    const throttle = this.throttleOf();
    if (head.paced && throttle !== undefined) {
      // Charged for the slices before; a paused slot holds the next frame, not the rest of this one.
      const wait = throttle.settle();
      if (wait > 0 && !(head.sent > 0 && throttle.uploadPaused())) {
        this.#timer = throttle.clock.setTimeout(() => {
          this.#timer = null;
          this.#pump();
        }, wait);
        return;
      }
      length = Math.min(length, throttle.sliceBytes());
    }
    const slice = head.bytes.subarray(head.sent, head.sent + length);
    head.sent += length;
    const last = head.sent === head.bytes.length;
    this.#writing = true;
    this.stream.write(slice, (err) => {
      this.#writing = false;
      if (head.handedOff) return; // stop() gave the rest, and the frame's callback, to the stream
      if ((last || err) && this.#queue[0] === head) this.#queue.shift();
      if (err || this.#stopped) {
        head.onWritten?.(err ?? (last ? undefined : closed()));
        this.stop(false);
        return;
      }
      if (last) head.onWritten?.();
      this.#pump();
    });
  }

  #wakeIdle(): void {
    for (const wake of this.#idle.splice(0)) wake();
  }
}
