// `coterie demo --cluster` (issues 21 and 22): the main story on three trackers over a store the
// demo starts itself, one tracker SIGKILLed mid-story, and nothing lost. The store is one throwaway
// PostgreSQL, or, with pg_autoctl installed, a pg_auto_failover formation whose primary is SIGKILLed
// too. Needs the PostgreSQL server binaries and pg_autoctl (CI installs both); without them the
// story that needs them says SKIPPED.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formationBinDir } from '../../src/cli/commands/demo-formation.js';
import { postgresBinDir } from '../../src/cli/commands/demo-postgres.js';
import { coterie } from '../helpers/cli-harness.js';
import { tempDir } from '../helpers/temp-dir.js';

const hasPostgres = postgresBinDir() !== undefined;
if (!hasPostgres)
  process.stderr.write('SKIPPED demo --cluster story: no PostgreSQL server binaries (initdb)\n');
const hasFormation = formationBinDir() !== undefined;
if (hasPostgres && !hasFormation)
  process.stderr.write(
    'SKIPPED demo --cluster on pg_auto_failover: no pg_autoctl (apt-get install postgresql-15-auto-failover pg-auto-failover-cli)\n',
  );

/** The demo's temporary directories left in /tmp (none once it is over). */
const leftovers = () => readdirSync('/tmp').filter((f) => /^coterie-demo-(pg|pgaf)-/.test(f));

/** A PATH with only what the single-PostgreSQL story runs by name (no pg_autoctl). */
function pathWithoutPgAutoctl(): string {
  const dir = tempDir().path;
  for (const tool of ['id', 'runuser', 'ipcrm']) {
    const found = execFileSync('sh', ['-c', `command -v ${tool} || true`], { encoding: 'utf8' }).trim();
    if (found !== '') symlinkSync(found, join(dir, tool));
  }
  return dir;
}

describe('coterie demo --cluster', () => {
  it.runIf(hasPostgres)(
    'runs the story on three trackers, survives a SIGKILLed one and loses nothing',
    async () => {
      const r = await coterie(['demo', '--cluster', '--size-mib', '8'], {
        env: { PATH: pathWithoutPgAutoctl() },
      });
      expect(r.code, r.err + r.out).toBe(0);
      expect(r.out, r.out).toMatch(
        /store {4}PostgreSQL at postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres \(throwaway\)/,
      );
      // One line says how to get the formation instead.
      expect(r.out, r.out).toMatch(/install postgresql-\d+-auto-failover pg-auto-failover-cli/);
      expect(r.out, r.out).not.toContain('pg_auto_failover formation (throwaway');
      expect(r.out, r.out).toMatch(/tracker {2}t3 https:\/\/127\.0\.0\.1:\d+#sha256=[0-9a-f]{64}/);
      expect(r.out, r.out).toContain('identical');
      expect(r.out, r.out).toContain('tracker t1 SIGKILLed');
      expect(r.out, r.out).toMatch(/nothing {2}lost: (\d+) of \1 messages alice sent delivered or read/);
      // Every peer is on a live tracker afterwards (t2 or t3, never none).
      expect(r.out, r.out).not.toMatch(/on none/);
      // The throwaway PostgreSQL is gone with the demo.
      expect(leftovers()).toEqual([]);
    },
    240_000,
  );

  it.runIf(hasPostgres)(
    'with --keep: leaves it running and prints how to stop each part, the store too; done, nothing is left',
    async () => {
      const r = await coterie(['demo', '--cluster', '--keep', '--size-mib', '1'], {
        env: { PATH: pathWithoutPgAutoctl() },
      });
      expect(r.code, r.err + r.out).toBe(0);
      const root = /coterie demo in (\S+)/.exec(r.out)![1]!;
      const store = /^ {2}store {2}(\S+): (pkill -KILL -f \S+); (rm -rf \S+)$/m.exec(r.out);
      expect(store, r.out).not.toBeNull();
      const named = (dir: string) =>
        execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })
          .split('\n')
          .filter((l) => l.includes(dir) && !l.startsWith('pkill'));
      expect(named(store![1]!).length).toBeGreaterThan(0);
      // What it says, as a user would type it.
      for (const [, dir] of r.out.matchAll(/coterie --data-dir (\S+) list_files/g)) {
        expect((await coterie(['--data-dir', dir!, 'quit'])).code).toBe(0);
      }
      for (const [, pid] of r.out.matchAll(/tracker pid (\d+)/g)) process.kill(Number(pid), 'SIGTERM');
      // Typed at a terminal, not through sh -c (whose own command line would name the directory).
      for (const command of [store![2]!, store![3]!]) {
        const [file, ...args] = command.split(' ');
        execFileSync(file!, args);
      }
      const deadline = Date.now() + 20_000;
      while ((named(root).length > 0 || named(store![1]!).length > 0) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect([...named(root), ...named(store![1]!)]).toEqual([]);
      expect(existsSync(store![1]!)).toBe(false);
      rmSync(root, { recursive: true, force: true });
    },
    240_000,
  );

  it.runIf(hasPostgres && hasFormation)(
    'with pg_autoctl: a formation, its primary SIGKILLed too, the standby promoted, the trackers following, nothing lost',
    async () => {
      const r = await coterie(['demo', '--cluster', '--size-mib', '8']);
      expect(r.code, r.err + r.out).toBe(0);
      const store =
        /store {4}pg_auto_failover formation \(throwaway, in (\S+)\): monitor 127\.0\.0\.1:\d+, primary n1 127\.0\.0\.1:(\d+), synchronous standby n2 127\.0\.0\.1:(\d+)/.exec(
          r.out,
        );
      expect(store, r.out).not.toBeNull();
      const [, dir, n1, n2] = store!;
      expect(r.out, r.out).toContain(
        `the trackers are given postgres://postgres@127.0.0.1:${n1},127.0.0.1:${n2}/coterie?target_session_attrs=read-write`,
      );
      expect(r.out, r.out).not.toContain('install postgresql-');
      expect(r.out, r.out).toContain('tracker t1 SIGKILLed');
      expect(r.out, r.out).toContain('store    primary n1 SIGKILLed');
      expect(r.out, r.out).toMatch(
        new RegExp(
          `promoted standby n2 127\\.0\\.0\\.1:${n2} by the monitor, writable [\\d.]+ s after the kill`,
        ),
      );
      expect(r.out, r.out).toContain('follow   the 2 live trackers found n2 by themselves');
      // The story goes on over the new primary: carol catches up, the topic works, nothing lost.
      expect(r.out, r.out).toMatch(/back {5}carol restarts and catches up: alice: .*, alice: /);
      expect(r.out, r.out).toMatch(/topic {4}films:releases .*bob: “director’s cut next week”/);
      expect(r.out, r.out).toMatch(/nothing {2}lost: (\d+) of \1 messages alice sent delivered or read/);
      expect(r.out, r.out).not.toMatch(/on none/);
      // The formation is gone with the demo: its directory and every process that ran in it.
      expect(existsSync(dir!)).toBe(false);
      const running = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
      expect(running.split('\n').filter((l) => l.includes(dir!))).toEqual([]);
    },
    480_000,
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
