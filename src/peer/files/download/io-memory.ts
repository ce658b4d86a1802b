/**
 * Page-aligned, shared memory for the blocks and pieces of a download on
 * their way to the disk.
 *
 * Why aligned: a download writes every byte of a file the machine has never
 * seen, so through the page cache each written page is a fresh page-cache
 * allocation, and on a virtual machine whose free memory goes back to the
 * host that costs more CPU than decrypting and hashing the same bytes (see
 * bench/transfer.ts: about 3 CPU-s per GiB here). Writing with O_DIRECT
 * skips the page cache, but the kernel then wants the buffer's address, the
 * length and the file position aligned to the device's block size, and a
 * Node Buffer guarantees no alignment. A WebAssembly memory is a page-aligned
 * mapping of its own; a shared one is a SharedArrayBuffer, so the hashing
 * worker reads it without a copy, as before.
 *
 * Slots are reused, never freed: the pool holds at most what was live at
 * once, which the download's in-flight and pending-write limits bound.
 */

/** Alignment of O_DIRECT buffers, lengths and positions: a page covers every common block size. */
export const IO_ALIGNMENT = 4096;

const WASM_PAGE_BYTES = 64 * 1024;
/** Memory per arena: one mapping for several slots (V8 reserves address space per memory). */
const ARENA_BYTES = 16 * 1024 * 1024;

/** Every arena made by any pool: its base address is page-aligned. */
const alignedArenas = new WeakSet<ArrayBufferLike>();

/** The one WebAssembly constructor used here (the compiler's lib has no WebAssembly values). */
type WasmMemoryConstructor = new (descriptor: {
  initial: number;
  maximum: number;
  shared: boolean;
}) => { readonly buffer: SharedArrayBuffer };
const WasmMemory = (globalThis as { WebAssembly?: { Memory: WasmMemoryConstructor } }).WebAssembly?.Memory;

/** True when `buf` may be written with O_DIRECT: page-aligned memory, a whole number of pages. */
export function isIoAligned(buf: Uint8Array): boolean {
  return (
    alignedArenas.has(buf.buffer) &&
    buf.byteOffset % IO_ALIGNMENT === 0 &&
    buf.byteLength % IO_ALIGNMENT === 0
  );
}

const roundUp = (n: number, to: number) => Math.ceil(n / to) * to;

/** A new shared arena: page-aligned where WebAssembly is there (see alignedArenas), else ordinary. */
function newArena(bytes: number): SharedArrayBuffer {
  try {
    if (WasmMemory === undefined) throw new Error('no WebAssembly');
    const pages = bytes / WASM_PAGE_BYTES;
    const memory = new WasmMemory({ initial: pages, maximum: pages, shared: true }).buffer;
    alignedArenas.add(memory);
    return memory;
  } catch {
    // --jitless, or the address space for memories ran out: still correct, written through the cache.
    return new SharedArrayBuffer(bytes);
  }
}

/** Fixed-size slots of aligned shared memory, carved from arenas made on demand. */
export class AlignedSlotPool {
  readonly slotBytes: number;
  readonly #slotsPerArena: number;
  readonly #arenas = new WeakSet<ArrayBufferLike>();
  readonly #free: Buffer[] = [];
  #ownedBytes = 0;

  constructor(minSlotBytes: number) {
    if (!(minSlotBytes > 0)) throw new RangeError('AlignedSlotPool: slot size must be > 0');
    this.slotBytes = roundUp(minSlotBytes, IO_ALIGNMENT);
    this.#slotsPerArena = Math.max(1, Math.floor(ARENA_BYTES / this.slotBytes));
  }

  /** Bytes of arenas made so far (lent and free). */
  get ownedBytes(): number {
    return this.#ownedBytes;
  }

  /** A whole slot: `slotBytes` long, page-aligned at its start (when WebAssembly is available). */
  take(): Buffer {
    const free = this.#free.pop();
    if (free) return free;
    const bytes = roundUp(this.#slotsPerArena * this.slotBytes, WASM_PAGE_BYTES);
    const memory = newArena(bytes);
    this.#arenas.add(memory);
    this.#ownedBytes += bytes;
    for (let i = this.#slotsPerArena - 1; i > 0; i--) {
      this.#free.push(Buffer.from(memory, i * this.slotBytes, this.slotBytes));
    }
    return Buffer.from(memory, 0, this.slotBytes);
  }

  /**
   * Gives back the slot that `view` (the slot or any part of it) lies in;
   * false when `view` is not from this pool. Once per slot taken, and only
   * when nothing reads or writes it any more.
   */
  give(view: Uint8Array): boolean {
    if (!this.#arenas.has(view.buffer)) return false;
    const start = view.byteOffset - (view.byteOffset % this.slotBytes);
    this.#free.push(Buffer.from(view.buffer as SharedArrayBuffer, start, this.slotBytes));
    return true;
  }

  /** True when `view` lies in this pool's memory. */
  owns(view: Uint8Array): boolean {
    return this.#arenas.has(view.buffer);
  }
}
