/**
 * UDX hands JS one packet at a time (about 1,450 bytes; 740,000 calls a
 * GiB), and each chunk pushed on costs a trip through node:tls's stream
 * wrapper and a TLS read attempt. The packets read in one turn of the
 * event loop go on together instead, after the turn's reads: UDX fills one
 * 64 KiB buffer packet after packet, so neighbours are joined without a
 * copy (a new view over both), and only a run that crosses buffers is copied.
 */
export class PacketRun {
  readonly #deliver: (bytes: Buffer) => void;
  #parts: Buffer[] = [];
  #bytes = 0;
  #scheduled = false;

  constructor(deliver: (bytes: Buffer) => void) {
    this.#deliver = deliver;
  }

  add(chunk: Buffer): void {
    const last = this.#parts.at(-1);
    if (
      last !== undefined &&
      last.buffer === chunk.buffer &&
      last.byteOffset + last.length === chunk.byteOffset
    )
      this.#parts[this.#parts.length - 1] = Buffer.from(
        last.buffer,
        last.byteOffset,
        last.length + chunk.length,
      );
    else this.#parts.push(chunk);
    this.#bytes += chunk.length;
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Delivers what has come so far (at the turn's end, and before the stream ends). */
  flush(): void {
    this.#scheduled = false;
    if (this.#bytes === 0) return;
    const parts = this.#parts;
    const bytes = parts.length === 1 ? parts[0]! : Buffer.concat(parts, this.#bytes);
    this.#parts = [];
    this.#bytes = 0;
    this.#deliver(bytes);
  }
}
