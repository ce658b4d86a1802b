import type { Socket } from 'node:net';
import { pipeline, Transform, type TransformCallback } from 'node:stream';
import { Pacer } from '../core/pacer.js';

/**
 * Joins two sockets of a circuit: each one's bytes go to the other
 * untouched, paced to `rateBytesPerSec` per direction (0: unpaced), with
 * backpressure (a slow reader slows its writer, the relay buffers little).
 * `tap` sees every relayed chunk (metrics; tests check it holds no
 * plaintext). Resolves once both sockets are closed.
 *
 * The end of one side's bytes is passed on as a half-close, as TCP would:
 * the other direction keeps flowing, and the circuit is torn down only once
 * both directions have ended (or either failed). Ending the circuit at the
 * first end lost the tail of the other direction: when a seeder sends its
 * last bytes and ends, the relay may still hold some of them in the socket
 * toward a slow (or merely not yet scheduled) downloader, and destroying
 * that socket dropped them. On Node 24 that was every time: when the
 * seeder's end arrived, the relay's TLS socket toward the downloader still
 * held the last 64 KiB in its write buffer (on Node 20 it had usually been
 * handed to the kernel by then), so a relayed `end(payload)` lost them.
 */
export function splice(
  a: Socket,
  b: Socket,
  options: { rateBytesPerSec: number; tap?: (chunk: Buffer) => void; onBytes: (n: number) => void },
): Promise<void> {
  const pace = (): Transform => {
    const pacer = options.rateBytesPerSec > 0 ? new Pacer(options.rateBytesPerSec) : undefined;
    return new Transform({
      transform(chunk: Buffer, _enc, done: TransformCallback) {
        options.onBytes(chunk.length);
        options.tap?.(chunk);
        const wait = pacer?.delayFor(chunk.length, performance.now()) ?? 0;
        if (wait <= 0) done(null, chunk);
        else setTimeout(() => done(null, chunk), wait);
      },
    });
  };
  // A socket that is not half-open ends its own writing when its reading ends: the direction
  // into it would then finish early, and its pipeline would destroy its source (the other
  // socket) with that direction's tail still buffered. Each pipeline ends its destination.
  a.allowHalfOpen = true;
  b.allowHalfOpen = true;
  const end = () => {
    a.destroy();
    b.destroy();
  };
  return Promise.all([
    new Promise<void>((resolve) => pipeline(a, pace(), b, () => resolve())),
    new Promise<void>((resolve) => pipeline(b, pace(), a, () => resolve())),
  ]).then(end, end);
}
