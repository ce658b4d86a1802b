// Damage a file as a failing disk would: one byte flipped in place, its size and mtime kept, so
// that only re-hashing its pieces can tell (the scrub tests of storage peers).
import { closeSync, openSync, readSync, statSync, utimesSync, writeSync } from 'node:fs';

export function flipByte(path: string, at: number): void {
  const before = statSync(path);
  const fd = openSync(path, 'r+');
  try {
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, at);
    b[0] = b[0]! ^ 0xff;
    writeSync(fd, b, 0, 1, at);
  } finally {
    closeSync(fd);
  }
  utimesSync(path, before.atime, before.mtime);
}
