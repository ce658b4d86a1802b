// peer.log's bound: rotation by size with a kept count, and reopen after a rename (SIGHUP).
import { existsSync, readFileSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openRotatingLog } from '../../src/os/rotating-log.js';
import { tempDir } from '../helpers/temp-dir.js';

const line = (i: number) => `${JSON.stringify({ i, pad: 'x'.repeat(80) })}\n`;

describe('openRotatingLog', () => {
  it('rotates past maxBytes into path.1 … path.keep and drops older files', () => {
    const dir = tempDir();
    try {
      const path = join(dir.path, 'peer.log');
      const log = openRotatingLog(path, { maxBytes: 1000, keep: 2 });
      for (let i = 0; i < 100; i++) log.write(line(i));
      log.flushSync();
      expect(statSync(path).size).toBeLessThan(1000 + line(0).length);
      for (const f of [`${path}.1`, `${path}.2`]) expect(statSync(f).size).toBeGreaterThanOrEqual(1000);
      expect(existsSync(`${path}.3`)).toBe(false);
      // The newest lines are in the live file, the ones before them in .1: nothing lost between.
      const live = readFileSync(path, 'utf8').trim().split('\n');
      const previous = readFileSync(`${path}.1`, 'utf8').trim().split('\n');
      const first = (JSON.parse(live[0]!) as { i: number }).i;
      expect((JSON.parse(previous.at(-1)!) as { i: number }).i).toBe(first - 1);
      expect((JSON.parse(live.at(-1)!) as { i: number }).i).toBe(99);
    } finally {
      dir.remove();
    }
  });

  it('reopens a renamed file: later lines go to a new one', () => {
    const dir = tempDir();
    try {
      const path = join(dir.path, 'peer.log');
      const log = openRotatingLog(path, { maxBytes: 0, keep: 1 });
      log.write(line(1));
      renameSync(path, `${path}.rotated`);
      log.write(line(2));
      log.reopen();
      log.write(line(3));
      log.flushSync();
      expect(readFileSync(`${path}.rotated`, 'utf8')).toBe(line(1) + line(2));
      expect(readFileSync(path, 'utf8')).toBe(line(3));
    } finally {
      dir.remove();
    }
  });
});
