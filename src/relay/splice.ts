import type { Socket } from 'node:net';
import { pipeline, Transform, type TransformCallback } from 'node:stream';
import { Pacer } from '../core/pacer.js';

/**
 * Joins two sockets of a circuit: each one's bytes go to the other
 * untouched, paced to `rateBytesPerSec` per direction (0: unpaced), with
 * backpressure (a slow reader slows its writer, the relay buffers little).
 * `tap` sees every relayed chunk (metrics; tests check it holds no
 * plaintext). Resolves once both sockets are closed.
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
  const end = () => {
    a.destroy();
    b.destroy();
  };
  return Promise.all([
    new Promise<void>((resolve) => pipeline(a, pace(), b, () => resolve())),
    new Promise<void>((resolve) => pipeline(b, pace(), a, () => resolve())),
  ]).then(end, end);
}
