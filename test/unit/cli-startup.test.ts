import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { tempDir } from '../helpers/temp-dir.js';

const ROOT = join(import.meta.dirname, '..', '..');

// Every `coterie <command>` is a new process: what it loads is the latency of every command a
// script or a user runs. TypeBox's schemas (200 ES modules) and jose belong to the daemon and
// the tracker, not to the client that only forwards words to the daemon.
it('loads neither TypeBox nor jose to send a command to the daemon (npm test builds dist first)', () => {
  const dir = tempDir('coterie-startup-').path;
  const record = join(dir, 'loaded.txt');
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      join(ROOT, 'test', 'fixtures', 'record-loads.mjs'),
      join(ROOT, 'bin', 'coterie.js'),
      'list_groups',
    ],
    {
      env: { ...process.env, RECORD_LOADS: record, COTERIE_DATA_DIR: join(dir, 'data') },
      encoding: 'utf8',
      timeout: 20_000,
    },
  );
  expect(r.stderr).toContain('DAEMON_NOT_RUNNING');
  const loaded = readFileSync(record, 'utf8').trim().split('\n');
  expect(loaded.some((u) => u.includes('/dist/cli/main.js'))).toBe(true);
  expect(loaded.filter((u) => /node_modules\/(@sinclair\/typebox|jose)\//.test(u))).toEqual([]);
});
