import { afterAll, onTestFinished } from 'vitest';
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

/**
 * A scratch directory for the tests of a file or a describe: call it at the top level or in a
 * describe's body (not in a hook or a test); it is made at once and removed after those tests.
 */
export function suiteTempDir(prefix = 'coterie-test-'): TempDir {
  const dir = makeTempDir(prefix);
  afterAll(() => dir.remove());
  return dir;
}
