import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CoterieError } from '../protocol/errors.js';

/**
 * One daemon per data directory: DIR/daemon.lock holds the owner's pid and,
 * on Linux, when that process started, created exclusively. A lock whose
 * process is gone (a crash, a kill -9) is taken over, and so is one whose pid
 * now names a process started at another time: after a crash and a restart
 * pids are handed out again (a daemon in a container often gets the very pid
 * of the one before), and a pid alone would keep the daemon from starting.
 */
export function acquireDataDirLock(dataDir: string): () => void {
  const path = join(dataDir, 'daemon.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const started = startTimeOf(process.pid);
      writeFileSync(path, `${process.pid}${started === undefined ? '' : ` ${started}`}\n`, {
        flag: 'wx',
        mode: 0o600,
      });
      return () => {
        try {
          if (ownerOf(readFileSync(path, 'utf8')).pid === process.pid) rmSync(path, { force: true });
        } catch {
          // already gone
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = ownerOf(readFileSync(path, 'utf8'));
    if (holds(owner)) {
      throw new CoterieError(
        'USAGE',
        `a peer daemon (pid ${owner.pid}) already runs for ${dataDir}: stop it with 'coterie --data-dir ${dataDir} quit', or pick another --data-dir`,
      );
    }
    rmSync(path, { force: true }); // stale: its process is gone
  }
  throw new CoterieError('USAGE', `cannot lock ${path}: remove it if no peer daemon runs for ${dataDir}`);
}

/** The lock's pid and start time (none in a lock from an older daemon, or off Linux). */
function ownerOf(text: string): { pid: number; started?: string } {
  const [pid, started] = text.trim().split(' ');
  return { pid: Number.parseInt(pid ?? '', 10), ...(started === undefined ? {} : { started }) };
}

/** The owner still runs: its pid is alive and, when the lock says when it started, started then. */
function holds(owner: { pid: number; started?: string }): boolean {
  if (!Number.isInteger(owner.pid) || owner.pid <= 0) return false;
  const now = startTimeOf(owner.pid);
  if (owner.started !== undefined && now !== undefined) return now === owner.started;
  // Without start times: this very process (a second daemon in it), or any live one.
  return owner.pid === process.pid || isAlive(owner.pid);
}

/**
 * When the process started, in clock ticks since boot (/proc/PID/stat's 22nd field); undefined
 * where there is no /proc or no such process. The command name (field 2) may hold spaces and
 * parentheses: the fields are counted from the last ')'.
 */
export function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
