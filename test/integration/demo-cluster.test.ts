// `coterie demo --cluster` (issues 21 and 22): the main story on three trackers over a throwaway
// PostgreSQL that the demo starts itself, one tracker SIGKILLed mid-story, and nothing lost. Needs
// the PostgreSQL server binaries (CI installs them); without them it says SKIPPED.
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { postgresBinDir } from '../../src/cli/commands/demo-postgres.js';
import { coterie } from '../helpers/cli-harness.js';
import { tempDir } from '../helpers/temp-dir.js';

const hasPostgres = postgresBinDir() !== undefined;
if (!hasPostgres)
  process.stderr.write('SKIPPED demo --cluster story: no PostgreSQL server binaries (initdb)\n');

describe('coterie demo --cluster', () => {
  it.runIf(hasPostgres)(
    'runs the story on three trackers, survives a SIGKILLed one and loses nothing',
    async () => {
      const r = await coterie(['demo', '--cluster', '--size-mib', '8']);
      expect(r.code, r.err + r.out).toBe(0);
      expect(r.out).toMatch(/tracker {2}t3 https:\/\/127\.0\.0\.1:\d+#sha256=[0-9a-f]{64}/);
      expect(r.out).toContain('identical');
      expect(r.out).toContain('tracker t1 SIGKILLed');
      expect(r.out).toMatch(/nothing {2}lost: (\d+) of \1 messages alice sent delivered or read/);
      // Every peer is on a live tracker afterwards (t2 or t3, never none).
      expect(r.out).not.toMatch(/on none/);
      // The throwaway PostgreSQL is gone with the demo.
      expect(readdirSync('/tmp').filter((f) => f.startsWith('coterie-demo-pg-'))).toEqual([]);
    },
    240_000,
  );

  it('finds the server binaries: the newest Debian version first, then PATH; none without initdb', () => {
    const dir = tempDir();
    const bin = (d: string, tools: string[]) => {
      mkdirSync(d, { recursive: true });
      for (const t of tools) writeFileSync(join(d, t), '');
    };
    const debian = join(dir.path, 'postgresql');
    bin(join(debian, '13', 'bin'), ['initdb', 'pg_ctl']);
    bin(join(debian, '15', 'bin'), ['initdb', 'pg_ctl']);
    bin(join(dir.path, 'path-only'), ['initdb', 'pg_ctl']);
    bin(join(dir.path, 'client-only'), ['psql', 'pg_ctl']);
    expect(postgresBinDir(debian, '')).toBe(join(debian, '15', 'bin'));
    expect(
      postgresBinDir(
        join(dir.path, 'none'),
        `${join(dir.path, 'client-only')}:${join(dir.path, 'path-only')}`,
      ),
    ).toBe(join(dir.path, 'path-only'));
    expect(postgresBinDir(join(dir.path, 'none'), join(dir.path, 'client-only'))).toBeUndefined();
  });
});
