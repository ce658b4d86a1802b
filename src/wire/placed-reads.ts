/**
 * Socket reads that land where the frame decoder wants them.
 *
 * By default Node's TLS socket decrypts each record (16 KiB) into a buffer
 * of its own, copies it into a freshly allocated chunk for the 'data'
 * event, and the decoder then copies the chunk into the frame's buffer: a
 * block is copied twice after decryption and leaves a GiB of short-lived
 * external memory per GiB received (collected late, so it shows in RSS).
 * With the socket's `onread` option given a buffer *function*, Node copies
 * the decrypted bytes into whatever buffer the function returned last and
 * reports how many landed (see `onread` in Node's net.Socket and
 * tls.connect). Returning the decoder's read target (the rest of a length
 * prefix, or the rest of the frame being received, which for a block is its
 * page-aligned slot) leaves Node's copy out of its decryption buffer as the
 * only one: measured on this machine, a TLS receiver then spends ~30 % less
 * CPU per GiB and ~30 MiB less RSS, and a 1 GiB download from three seeders
 * went from 274 to 387 MiB/s.
 *
 * The socket is created (by a dial) before its FramedConnection exists, so
 * a PlacedReads is made first, its `onread` passed to net/tls.connect, and
 * the connection attaches itself as the sink and resumes the socket. Bytes
 * that arrive before then (a peer that talks first: one read, then reading
 * pauses) or into a buffer that is no longer the sink's target are handed
 * over with push(), i.e. copied, never lost.
 */

/** The consumer of placed reads: a FramedConnection. */
export interface ReadSink {
  /** Where the next bytes go; never empty. */
  readTarget(): Buffer;
  /** `n` bytes were written at the start of the last readTarget(). False pauses reading. */
  commit(n: number): boolean;
  /** Bytes that landed elsewhere; the sink copies them. False pauses reading. */
  push(bytes: Buffer): boolean;
}

/** The shape of net.connect's / tls.connect's `onread` option. */
export interface OnReadOption {
  buffer: () => Uint8Array;
  callback: (bytesRead: number, buffer: Uint8Array) => boolean;
}

/** Where bytes go while no sink is attached. */
const HOLDING_BYTES = 16 * 1024;

export class PlacedReads {
  #sink: ReadSink | null = null;
  /**
   * The sink's read target last handed to the socket, whose next read fills
   * it; null while the socket holds a holding buffer (no sink yet, or the
   * sink had no room), whose bytes are pushed instead.
   */
  #placed: Buffer | null = null;
  /** Bytes received before a sink was attached, in order. */
  #held: Buffer[] = [];

  /** Pass as `onread` to net.connect or tls.connect (Node ≥ 12.11 for TCP, ≥ 14 for TLS). */
  readonly onread: OnReadOption = {
    buffer: () => {
      const target = this.#sink?.readTarget();
      // Never an empty buffer: Node's TLS socket would spin on it.
      this.#placed = target !== undefined && target.length > 0 ? target : null;
      return this.#placed ?? Buffer.allocUnsafe(HOLDING_BYTES);
    },
    callback: (n, buffer) => {
      const sink = this.#sink;
      if (sink === null) {
        // A fresh holding buffer is handed out next, so this one can be kept as is. Reading
        // pauses until a sink attaches (and resumes the socket), as a stream without a 'data'
        // listener would: otherwise the whole exchange, its end included, could pass unseen.
        this.#held.push(Buffer.from(buffer.buffer, buffer.byteOffset, n));
        return false;
      }
      if (buffer === this.#placed) return sink.commit(n);
      // Landed in a holding buffer (handed out before the sink attached): copy it over.
      return sink.push(Buffer.from(buffer.buffer, buffer.byteOffset, n));
    },
  };

  /**
   * Attaches the consumer; bytes held so far are pushed to it at once. The
   * socket's current buffer was handed out before, so its next read is
   * pushed too; every later read is placed. Then resume the socket (reading
   * paused if bytes came early).
   */
  attach(sink: ReadSink): void {
    if (this.#sink !== null) throw new Error('PlacedReads: a sink is already attached');
    this.#sink = sink;
    const held = this.#held;
    this.#held = [];
    for (const bytes of held) sink.push(bytes);
  }
}
