import { onTestFinished } from 'vitest';
import { makeTempDir, type TempDir } from '../../bench/lib/temp-dir.js';

export type { TempDir };

/**
 * The one scratch directory of the tests. Made inside a test, it is removed
 * when the test finishes (pass or fail); made in a beforeAll, the matching
 * afterAll calls remove(). remove() may be called early: again is harmless.
 */
export function tempDir(prefix = 'coterie-test-'): TempDir {
  const dir = makeTempDir(prefix);
  try {
    onTestFinished(() => dir.remove());
  } catch {
    // Not inside a test (a beforeAll, a describe): the caller removes it.
  }
  return dir;
}
