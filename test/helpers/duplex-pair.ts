import { Duplex } from 'node:stream';

/**
 * How an in-memory link misbehaves (libp2p's streamPair({ delay }) habit), each
 * way on its own. Without any of these the pair is a plain socket pair.
 */
export interface LinkShape {
  /** One-way latency added to every chunk, in ms. */
  delayMs?: number;
  /** Throttling: at most this many bytes per second each way (a chunk takes length/rate to leave). */
  bytesPerSecond?: number;
  /** Loss: once this many bytes crossed the link (both ways), it resets: both sides destroyed, as a dropped TCP flow. */
  dropAfterBytes?: number;
  /** A stall: past this many bytes from the second side, nothing more it writes arrives (the link stays up). */
  stallAfterBytes?: number;
}

export interface DuplexPairOptions extends LinkShape {
  highWaterMark?: number;
}

/** A chunk on its way, or the end of the stream (null). */
interface InFlight {
  chunk: Buffer | null;
  arriveAtMs: number;
}

/**
 * Two connected in-memory Duplex streams, like a socket pair: what one side
 * writes the other reads, ending one side ends the other's readable side,
 * destroying one resets the other. Unshaped, writes wait while the reader's
 * buffer is full, so backpressure behaves as over a real socket; shaped
 * (delay, throttling), a write completes when its chunk has left at the
 * link's rate, and the reader's buffer is not bounded (the rate is).
 */
export function duplexPair(options: DuplexPairOptions = {}): [Duplex, Duplex] {
  const highWaterMark = options.highWaterMark ?? 64 * 1024;
  const shaped = (options.delayMs ?? 0) > 0 || options.bytesPerSecond !== undefined;
  const sides: Duplex[] = [];
  const pendingWrite: (((err?: Error | null) => void) | null)[] = [null, null];
  // Shaped links: per direction, what is on the wire, when the line is free again, and the delivery timer.
  const wire: InFlight[][] = [[], []];
  const lineFreeAtMs = [0, 0];
  const timers = new Set<NodeJS.Timeout>();
  let crossedBytes = 0;
  let sentBySecond = 0;

  const later = (fn: () => void, ms: number) => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };
  const deliver = (to: number) => {
    const queue = wire[1 - to]!;
    const now = performance.now();
    while (queue.length > 0 && queue[0]!.arriveAtMs <= now) {
      const { chunk } = queue.shift()!;
      if (!sides[to]!.destroyed) sides[to]!.push(chunk);
    }
    if (queue.length > 0) later(() => deliver(to), queue[0]!.arriveAtMs - now);
  };
  const send = (me: number, chunk: Buffer | null, cb: () => void) => {
    const now = performance.now();
    const transmitMs = chunk && options.bytesPerSecond ? (chunk.length * 1000) / options.bytesPerSecond : 0;
    const leftAtMs = Math.max(now, lineFreeAtMs[me]!) + transmitMs;
    lineFreeAtMs[me] = leftAtMs;
    const queue = wire[me]!;
    queue.push({ chunk, arriveAtMs: leftAtMs + (options.delayMs ?? 0) });
    // The head's timer delivers what follows it; a new head needs its own.
    if (queue.length === 1) later(() => deliver(1 - me), queue[0]!.arriveAtMs - now);
    // The end completes once it arrived: a side that finishes may be destroyed, and would cut the tail.
    later(cb, (chunk === null ? queue.at(-1)!.arriveAtMs : leftAtMs) - now);
  };
  const reset = () => {
    for (const t of timers) clearTimeout(t);
    timers.clear();
    const err = Object.assign(new Error('ECONNRESET: the link dropped'), { code: 'ECONNRESET' });
    for (const s of sides) if (!s.destroyed) s.destroy(err);
  };

  const make = (me: number): Duplex => {
    const other = 1 - me;
    return new Duplex({
      highWaterMark,
      read() {
        // Our reader made room: let the other side's blocked write complete.
        const cb = pendingWrite[other];
        pendingWrite[other] = null;
        cb?.();
      },
      write(written: Buffer, _enc, cb) {
        // Copied, as a socket copies into the kernel: the writer may reuse its buffer once called back.
        const chunk = Buffer.from(written);
        const peer = sides[other]!;
        if (peer.destroyed) return cb(new Error('EPIPE: peer destroyed'));
        crossedBytes += chunk.length;
        if (options.dropAfterBytes !== undefined && crossedBytes > options.dropAfterBytes) {
          queueMicrotask(reset);
          return cb();
        }
        if (me === 1 && options.stallAfterBytes !== undefined) {
          sentBySecond += chunk.length;
          if (sentBySecond > options.stallAfterBytes) return cb(); // taken, never delivered
        }
        if (shaped) return send(me, chunk, () => cb());
        if (peer.push(chunk)) cb();
        else pendingWrite[me] = cb;
      },
      final(cb) {
        if (shaped) return send(me, null, () => cb());
        sides[other]!.push(null);
        cb();
      },
      destroy(err, cb) {
        const peer = sides[other]!;
        if (!peer.destroyed) peer.destroy();
        pendingWrite[me] = null;
        if (sides.every((s) => s.destroyed || s === sides[me])) {
          for (const t of timers) clearTimeout(t);
          timers.clear();
        }
        cb(err);
      },
    });
  };
  sides.push(make(0), make(1));
  return [sides[0]!, sides[1]!];
}
