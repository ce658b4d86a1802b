import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CoterieError } from '../protocol/errors.js';

/**
 * One daemon per data directory: DIR/daemon.lock holds the owner's pid,
 * created exclusively. A lock whose process is gone (a crash, a kill -9) is
 * taken over.
 */
export function acquireDataDirLock(dataDir: string): () => void {
  const path = join(dataDir, 'daemon.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(path, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      return () => {
        try {
          if (readFileSync(path, 'utf8').trim() === String(process.pid)) rmSync(path, { force: true });
        } catch {
          // already gone
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
    if (Number.isInteger(owner) && owner > 0 && (owner === process.pid || isAlive(owner))) {
      throw new CoterieError(
        'USAGE',
        `a peer daemon (pid ${owner}) already runs for ${dataDir}: stop it with 'coterie --data-dir ${dataDir} quit', or pick another --data-dir`,
      );
    }
    rmSync(path, { force: true }); // stale: its process is gone
  }
  throw new CoterieError('USAGE', `cannot lock ${path}: remove it if no peer daemon runs for ${dataDir}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
