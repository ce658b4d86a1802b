import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TempDir {
  readonly path: string;
  /** Removes the directory and all below it (again is harmless). */
  remove(): void;
}

/** A fresh directory under the OS temp dir; the caller removes it (test/helpers ties that to the test). */
export function makeTempDir(prefix = 'coterie-'): TempDir {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}
