import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, exited, stop, until } from '../helpers/cli-harness.js';
import { tempDir } from '../helpers/temp-dir.js';

const ROOT = join(import.meta.dirname, '..', '..');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

interface ShellBlock {
  /** 1-based line of the opening fence. */
  line: number;
  /** `run`, or the reason it is not run, from the `<!-- readme-test: … -->` comment before it. */
  mark: string | undefined;
  lines: string[];
}

/** The README's ```sh blocks, each with the readme-test comment on the line before its fence. */
function shellBlocks(text: string): ShellBlock[] {
  const all = text.split('\n');
  const blocks: ShellBlock[] = [];
  for (let i = 0; i < all.length; i++) {
    if (all[i] !== '```sh') continue;
    const mark = /^<!-- readme-test: (.*) -->$/.exec(all[i - 1] ?? '')?.[1];
    const end = all.indexOf('```', i + 1);
    blocks.push({ line: i + 1, mark, lines: all.slice(i + 1, end) });
    i = end;
  }
  return blocks;
}

/**
 * The blocks not run, and why (the README says the same in its comment before each): a new shell
 * block in the README must be run here or added to this list.
 */
const NOT_RUN: Record<string, string> = {
  'npm ci && npx coterie demo':
    'npm ci installs from the registry and npm test is the suite itself; the test runs in a checkout npm ci already set up',
  'coterie peer --data-dir ~/.local/share/coterie':
    'names trackers t1 and t2 that do not exist; the walkthrough starts real peers',
  'coterie relay --tracker https://tracker.example':
    'names hosts tracker.example and relay.example that do not exist',
  'coterie tracker --port 0 --data-dir ./tracker-data':
    'a tracker in the foreground with its output; the walkthrough starts the same tracker',
  'coterie tracker --port 7070 --data-dir t1 --store postgres://':
    'needs a PostgreSQL server at db:5432 (the cluster tests start their own)',
  'npm run lint': 'the lint, the suite and the benchmarks themselves',
};

describe('the README', () => {
  const blocks = shellBlocks(README);

  it('marks every shell block as run by this test or not, with the reason this test lists', () => {
    const skipped: Record<string, string> = {};
    for (const b of blocks) {
      expect(b.mark, `README line ${b.line}: no <!-- readme-test: … --> before the block`).toBeDefined();
      if (b.mark!.startsWith('run')) continue;
      const key = Object.keys(NOT_RUN).find((k) => b.lines[0]!.startsWith(k));
      expect(key, `README line ${b.line}: skipped, but not listed in NOT_RUN`).toBeDefined();
      skipped[key!] = b.mark!.replace(/^skip: /, '');
    }
    expect(skipped).toEqual(NOT_RUN);
    expect(blocks.filter((b) => b.mark?.startsWith('run'))).toHaveLength(1);
  });

  it('runs `npx coterie` in a checkout npm ci set up: this checkout’s launcher', () => {
    const r = spawnSync('npx', ['coterie', '--version'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string })
      .version;
    expect(r.stdout.trim(), r.stderr).toBe(version);
  }, 150_000);

  describe('walkthrough, pasted one line at a time', () => {
    const scratch = tempDir('coterie-readme-');
    const background: ChildProcess[] = [];

    afterAll(async () => {
      for (const child of background.reverse()) await stop(child, 'SIGTERM');
      scratch.remove();
    });

    it('the owner makes a group, shares and accepts; the member joins, downloads the file intact and thanks her', async () => {
      const block = blocks.find((b) => b.mark?.startsWith('run'))!;
      // What this test changes in the lines: its own directory for /tmp/coterie, and the tracker's
      // port 0 (tests never take a fixed port), whose real port then replaces 7070 in the URLs.
      const dir = scratch.path;
      // `npx coterie` is this checkout's launcher (the test above runs the real npx once); a shim
      // on PATH saves npm's start, about 1.5 CPU-s a line.
      const shims = join(dir, 'shims');
      mkdirSync(shims);
      writeFileSync(
        join(shims, 'npx'),
        `#!/bin/sh\n[ "$1" = coterie ] || exit 99\nshift\nexec "${process.execPath}" "${BIN}" "$@"\n`,
      );
      chmodSync(join(shims, 'npx'), 0o755);
      const env = { ...process.env, PATH: `${shims}:${process.env.PATH}` };
      let port = '7070';
      const withPaths = (line: string) =>
        line
          .replaceAll('/tmp/coterie', dir)
          .replace('--port 7070', '--port 0')
          .replaceAll(':7070', `:${port}`);

      /** A line that keeps running (the tracker's terminal, a daemon put in the background with &). */
      const startBackground = async (line: string, ready: RegExp): Promise<RegExpExecArray> => {
        const child = spawn('sh', ['-c', `exec ${line}`], {
          cwd: ROOT,
          env,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        background.push(child);
        let out = '';
        child.stdout!.on('data', (d) => (out += d));
        child.stderr!.on('data', (d) => (out += d));
        await until(`${line}: ${ready}`, () => ready.test(out), 60_000).catch((err: Error) => {
          throw new Error(`${err.message}\n${out}`);
        });
        return ready.exec(out)!;
      };

      /**
       * A line run to its end; a password '-' gets `<user>-password` on stdin, as from a pipe.
       * (Not spawnSync: the tracker's and daemons' output pipes must keep draining meanwhile.)
       */
      const run = async (line: string): Promise<string> => {
        const user = / (\w+) -$/.exec(line)?.[1];
        const child = spawn('sh', ['-c', line], { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
        // A line that reads no stdin may exit before the write: its EPIPE is no failure (its exit
        // code is the verdict), and unhandled it failed a whole run on Node 22.
        child.stdin!.on('error', () => undefined);
        child.stdin!.end(user === undefined ? '' : `${user}-password\n`);
        let out = '';
        let err = '';
        child.stdout!.on('data', (d) => (out += d));
        child.stderr!.on('data', (d) => (err += d));
        const code = await exited(child, 120_000);
        expect(code, `${line}\n${out}${err}`).toBe(0);
        return out;
      };

      let last = '';
      for (const raw of block.lines) {
        const line = withPaths(raw.trim());
        if (line === '' || line.startsWith('#')) continue;
        if (/ tracker /.test(line)) {
          port = (await startBackground(line, /listening on https:\/\/127\.0\.0\.1:(\d+)#sha256=/))[1]!;
        } else if (line.endsWith('&')) {
          await startBackground(line.slice(0, -1).trim(), / serving on /);
        } else {
          last = line;
          const out = await run(line);
          if (line.endsWith('show_messages')) {
            // The message is pushed to alice's peer as bob sends it; a person reads it a moment
            // later, the test asks again until it is there.
            let shown = out;
            await until(
              'thanks at alice',
              async () => {
                shown = await run(line);
                return shown.includes('thanks');
              },
              15_000,
            ).catch(() => {
              throw new Error(`alice's show_messages never showed bob's thanks:\n${shown}`);
            });
          }
        }
      }
      expect(last).toMatch(/show_messages$/);
      const copy = join(dir, 'downloads', 'movie.mkv');
      expect(existsSync(copy)).toBe(true);
      expect(readFileSync(copy).equals(readFileSync(join(dir, 'movie.mkv')))).toBe(true);
    }, 300_000);
  });
});
