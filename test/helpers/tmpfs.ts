import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmdirSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A small tmpfs of its own for disk-full tests: mounting needs root (the
 * tests run as root in CI). Tests that need one are skipped elsewhere, and
 * say so once.
 */

export interface Tmpfs {
  dir: string;
  /** Bytes free right now (what a file may take). */
  free(): number;
  unmount(): void;
}

export function mountTmpfs(sizeBytes: number): Tmpfs {
  const dir = mkdtempSync(join(tmpdir(), 'coterie-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes},mode=0700`, 'tmpfs', dir], {
      stdio: 'pipe',
    });
  } catch (err) {
    rmdirSync(dir);
    throw err;
  }
  let mounted = true;
  return {
    dir,
    free: () => {
      const s = statfsSync(dir);
      return s.bavail * s.bsize;
    },
    unmount() {
      if (!mounted) return;
      mounted = false;
      try {
        execFileSync('umount', [dir], { stdio: 'pipe' });
      } catch {
        // Still busy (a descriptor not closed yet): detach it now, the kernel frees it when released.
        execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
      }
      rmdirSync(dir);
    },
  };
}

/** Whether this process can mount a tmpfs (root, and a kernel and container that allow it). */
export function canMountTmpfs(): boolean {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return false;
  try {
    mountTmpfs(64 * 1024).unmount();
    return true;
  } catch {
    return false;
  }
}

/** canMountTmpfs(), printing why the tests that need it are skipped when it cannot. */
export function tmpfsOrSkip(suite: string): boolean {
  const ok = canMountTmpfs();
  if (!ok) console.warn(`[${suite}] SKIPPED: cannot mount a tmpfs (not root, or not allowed here)`);
  return ok;
}
