import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AlignedSlotPool, IO_ALIGNMENT, isIoAligned } from '../../src/peer/files/download/io-memory.js';
import { suiteTempDir } from '../helpers/temp-dir.js';

const dir = suiteTempDir('coterie-iomem-').path;

/** Writes `buf` at 0 with O_DIRECT; the errno code when the kernel refuses it. */
function directWrite(buf: Buffer): string {
  const path = join(dir, 'direct.bin');
  closeSync(openSync(path, 'w'));
  const fd = openSync(path, constants.O_RDWR | constants.O_DIRECT);
  try {
    writeSync(fd, buf, 0, buf.length, 0);
    return 'ok';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? 'error';
  } finally {
    closeSync(fd);
  }
}

/** Whether this temp directory's file system checks O_DIRECT alignment (ext4 and xfs do; tmpfs does not). */
const enforcesAlignment = (() => {
  try {
    return directWrite(Buffer.alloc(IO_ALIGNMENT + 1).subarray(1)) === 'EINVAL';
  } catch {
    return false; // no O_DIRECT at all here
  }
})();

describe('aligned slot pool', () => {
  it('rounds slots up to whole pages and reuses a given-back slot', () => {
    const pool = new AlignedSlotPool(IO_ALIGNMENT * 2 + 9);
    expect(pool.slotBytes).toBe(IO_ALIGNMENT * 3);
    const a = pool.take();
    expect(a.length).toBe(pool.slotBytes);
    expect(a.buffer).toBeInstanceOf(SharedArrayBuffer);
    a.fill(7);
    // Given back through any view inside it, it comes back whole.
    expect(pool.give(a.subarray(100, 200))).toBe(true);
    const b = pool.take();
    expect(b.buffer).toBe(a.buffer);
    expect(b.byteOffset).toBe(a.byteOffset);
    expect(b.length).toBe(pool.slotBytes);
    expect(pool.give(Buffer.alloc(10))).toBe(false);
    expect(pool.owns(b)).toBe(true);
  });

  it('carves slots from shared arenas that hold several of them', () => {
    const pool = new AlignedSlotPool(64 * 1024);
    const slots = Array.from({ length: 5 }, () => pool.take());
    expect(new Set(slots.map((s) => s.buffer)).size).toBe(1);
    const offsets = slots.map((s) => s.byteOffset).sort((x, y) => x - y);
    for (let i = 1; i < offsets.length; i++) expect(offsets[i]! - offsets[i - 1]!).toBe(64 * 1024);
    expect(pool.ownedBytes).toBeGreaterThanOrEqual(5 * 64 * 1024);
  });

  it('says which buffers may go to O_DIRECT', () => {
    const slot = new AlignedSlotPool(IO_ALIGNMENT * 4).take();
    expect(isIoAligned(slot)).toBe(true);
    expect(isIoAligned(slot.subarray(IO_ALIGNMENT))).toBe(true);
    expect(isIoAligned(slot.subarray(1, 1 + IO_ALIGNMENT))).toBe(false);
    expect(isIoAligned(slot.subarray(0, IO_ALIGNMENT + 100))).toBe(false);
    expect(isIoAligned(Buffer.alloc(IO_ALIGNMENT * 4))).toBe(false);
    expect(isIoAligned(Buffer.from(new SharedArrayBuffer(IO_ALIGNMENT)))).toBe(false);
  });

  it.skipIf(!enforcesAlignment)(
    'gives memory the kernel accepts for O_DIRECT where it checks alignment',
    () => {
      const pool = new AlignedSlotPool(IO_ALIGNMENT * 2);
      for (let i = 0; i < 3; i++) {
        const slot = pool.take();
        slot.fill(i + 1);
        expect(directWrite(slot)).toBe('ok');
        expect(directWrite(slot.subarray(IO_ALIGNMENT))).toBe('ok');
      }
      // The same write from memory off a page boundary is refused: the check above means something.
      const slot = pool.take();
      expect(directWrite(slot.subarray(512 + 16, 512 + 16 + IO_ALIGNMENT))).toBe('EINVAL');
    },
  );
});
