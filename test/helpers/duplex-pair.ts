import { Duplex } from 'node:stream';

/**
 * Two connected in-memory Duplex streams, like a socket pair: what one side
 * writes the other reads, ending one side ends the other's readable side,
 * destroying one resets the other. Writes wait while the reader's buffer is
 * full, so backpressure behaves as over a real socket.
 */
export function duplexPair(options: { highWaterMark?: number } = {}): [Duplex, Duplex] {
  const highWaterMark = options.highWaterMark ?? 64 * 1024;
  const sides: Duplex[] = [];
  const pendingWrite: (((err?: Error | null) => void) | null)[] = [null, null];
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
      write(chunk: Buffer, _enc, cb) {
        const peer = sides[other]!;
        if (peer.destroyed) return cb(new Error('EPIPE: peer destroyed'));
        if (peer.push(chunk)) cb();
        else pendingWrite[me] = cb;
      },
      final(cb) {
        sides[other]!.push(null);
        cb();
      },
      destroy(err, cb) {
        const peer = sides[other]!;
        if (!peer.destroyed) peer.destroy();
        pendingWrite[me] = null;
        cb(err);
      },
    });
  };
  sides.push(make(0), make(1));
  return [sides[0]!, sides[1]!];
}
