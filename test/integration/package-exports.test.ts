import { spawnSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/temp-dir.js';

const ROOT = join(import.meta.dirname, '..', '..');

/**
 * The package as npm would publish it: what `npm pack` puts in the tarball runs (the launcher,
 * the build, the web page, the native source), and a consumer that installed it imports
 * `coterie/tracker` and `coterie/peer` through the exports map, with their type declarations.
 */
describe('the published package', () => {
  const scratch = tempDir('coterie-package-');

  it('packs the build, the launcher, the web page, the native source and the licence, and no sources or tests', () => {
    // --ignore-scripts: the build is there already (npm test builds first); prepare would redo it.
    const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status, r.stderr).toBe(0);
    const files = new Set(
      (JSON.parse(r.stdout) as [{ files: { path: string }[] }])[0].files.map((f) => f.path),
    );
    for (const path of [
      'package.json',
      'LICENSE',
      'README.md',
      'bin/coterie.js',
      'binding.gyp',
      'native/addon.c',
      'native/addon.h',
      'native/preallocate.c',
      'native/sha256.c',
      'native/sha256-pair.c',
      'native/sha256-pair.h',
      'native/pread-nowait.c',
      'dist/cli/main.js',
      'dist/tracker/index.js',
      'dist/tracker/index.d.ts',
      'dist/peer/index.js',
      'dist/peer/index.d.ts',
      'dist/web/index.html',
      'dist/web/app.js',
    ]) {
      expect(files, path).toContain(path);
    }
    const stray = [...files].filter((f) => /^(src|test|bench|web|scripts|docs)\//.test(f));
    expect(stray).toEqual([]);
  }, 90_000);

  it('resolves coterie/tracker and coterie/peer through the exports map, at run time and for the type checker', () => {
    // A consumer project with the package installed (a link, as npm link makes it).
    const consumer = join(scratch.path, 'consumer');
    mkdirSync(join(consumer, 'node_modules'), { recursive: true });
    symlinkSync(ROOT, join(consumer, 'node_modules', 'coterie'), 'dir');
    writeFileSync(join(consumer, 'package.json'), '{"type":"module"}');
    const run = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const t = await import('coterie/tracker'); const p = await import('coterie/peer');
         console.log(typeof t.startTracker, typeof p.startPeerDaemon);`,
      ],
      { cwd: consumer, encoding: 'utf8', timeout: 30_000 },
    );
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe('function function\n');

    // Typed, not `any`: a wrong option is a compile error the consumer's @ts-expect-error needs.
    writeFileSync(
      join(consumer, 'consumer.ts'),
      `import { startTracker, type TrackerOptions } from 'coterie/tracker';
import { startPeerDaemon, type PeerDaemonOptions } from 'coterie/peer';
const tracker: TrackerOptions = { port: 0, dataDir: '/tmp/t' };
const peer: PeerDaemonOptions = { dataDir: '/tmp/x', trackers: ['https://127.0.0.1:7070'] };
export const started = [startTracker(tracker), startPeerDaemon(peer)];
// @ts-expect-error: port is a number
export const wrong = startTracker({ port: 'seven', dataDir: '/tmp/t' });
`,
    );
    const tsc = spawnSync(
      process.execPath,
      [
        join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
        '--noEmit',
        '--strict',
        '--skipLibCheck',
        '--module',
        'nodenext',
        '--moduleResolution',
        'nodenext',
        '--target',
        'es2022',
        '--types',
        'node',
        '--typeRoots',
        join(ROOT, 'node_modules', '@types'),
        'consumer.ts',
      ],
      { cwd: consumer, encoding: 'utf8', timeout: 90_000 },
    );
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.status).toBe(0);
  }, 150_000); // tsc over the declarations: about 15 s alone, 40 s at load 26
});
