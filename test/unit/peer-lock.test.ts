import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { acquireDataDirLock, startTimeOf } from '../../src/peer/lock.js';
import { tempDir } from '../helpers/temp-dir.js';

const others: ChildProcess[] = [];
afterEach(() => {
  for (const c of others.splice(0)) c.kill('SIGKILL');
});

async function otherProcess(): Promise<ChildProcess> {
  const c = spawn('sleep', ['300'], { stdio: 'ignore' });
  others.push(c);
  await new Promise((r) => c.once('spawn', r));
  return c;
}

const lockIn = (dir: string) => join(dir, 'daemon.lock');

describe('the data directory lock', () => {
  it('is held by a live daemon and given back at release; a second daemon is refused meanwhile', () => {
    const dir = tempDir().path;
    const release = acquireDataDirLock(dir);
    expect(readFileSync(lockIn(dir), 'utf8').trim()).toBe(`${process.pid} ${startTimeOf(process.pid)}`);
    expect(() => acquireDataDirLock(dir)).toThrow(/a peer daemon \(pid \d+\) already runs/);
    release();
    acquireDataDirLock(dir)();
  });

  it.runIf(startTimeOf(process.pid) !== undefined)(
    'takes over a lock whose pid now names a process started at another time (pids handed out again)',
    async () => {
      const dir = tempDir().path;
      // A crashed daemon's lock, its pid now ours (a container restarted), or another program's.
      writeFileSync(lockIn(dir), `${process.pid} 1\n`);
      acquireDataDirLock(dir)();
      const other = await otherProcess();
      writeFileSync(lockIn(dir), `${other.pid} 1\n`);
      acquireDataDirLock(dir)();
      // The same process, started when the lock says: it still runs.
      writeFileSync(lockIn(dir), `${other.pid} ${startTimeOf(other.pid!)}\n`);
      expect(() => acquireDataDirLock(dir)).toThrow(/already runs/);
    },
  );

  it('reads a lock without a start time (an older daemon’s) by its pid alone', async () => {
    const dir = tempDir().path;
    const other = await otherProcess();
    writeFileSync(lockIn(dir), `${other.pid}\n`);
    expect(() => acquireDataDirLock(dir)).toThrow(/already runs/);
    other.kill('SIGKILL');
    await new Promise((r) => other.once('exit', r));
    acquireDataDirLock(dir)();
  });
});
