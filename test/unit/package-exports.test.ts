/**
 * package.json's `exports` as a user of the package meets them: a scratch project whose
 * node_modules/coterie links to this checkout, resolved by Node itself (a child process, not
 * vitest's resolver) and type-checked by tsc against the declarations in dist/ (npm test
 * builds first).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { suiteTempDir } from '../helpers/temp-dir.js';

const ROOT = join(import.meta.dirname, '..', '..');
const scratch = suiteTempDir('coterie-exports-').path;

beforeAll(() => {
  mkdirSync(join(scratch, 'node_modules'));
  symlinkSync(ROOT, join(scratch, 'node_modules', 'coterie'), 'dir');
  // The declarations name Node's types; a consumer has @types/node of its own.
  symlinkSync(join(ROOT, 'node_modules', '@types'), join(scratch, 'node_modules', '@types'), 'dir');
  writeFileSync(join(scratch, 'package.json'), JSON.stringify({ name: 'consumer', type: 'module' }));
});

/** Runs an ES module script with Node from the scratch project; its stdout parsed as JSON. */
function nodeInScratch(script: string): unknown {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: scratch,
    encoding: 'utf8',
    timeout: 20_000,
  });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout);
}

describe('the package entries', () => {
  it('coterie/tracker and coterie/peer resolve to dist/ and hold their named exports', () => {
    const found = nodeInScratch(`
      const kinds = (m, names) => Object.fromEntries(names.map((n) => [n, typeof m[n]]));
      const tracker = await import('coterie/tracker');
      const peer = await import('coterie/peer');
      console.log(JSON.stringify({
        trackerAt: import.meta.resolve('coterie/tracker'),
        peerAt: import.meta.resolve('coterie/peer'),
        tracker: kinds(tracker, ['startTracker', 'TRACKER_VERSION', 'TRACKER_DEFAULTS', 'openStore']),
        peer: kinds(peer, ['startPeerDaemon', 'callDaemon', 'resolveDataDir', 'COMMANDS']),
      }));
    `);
    expect(found).toEqual({
      trackerAt: expect.stringMatching(/\/dist\/tracker\/index\.js$/),
      peerAt: expect.stringMatching(/\/dist\/peer\/index\.js$/),
      tracker: {
        startTracker: 'function',
        TRACKER_VERSION: 'string',
        TRACKER_DEFAULTS: 'object',
        openStore: 'function',
      },
      peer: {
        startPeerDaemon: 'function',
        callDaemon: 'function',
        resolveDataDir: 'function',
        COMMANDS: 'object',
      },
    });
  });

  it('refuses the files behind the entries', () => {
    const codes = nodeInScratch(`
      const codes = [];
      for (const name of ['coterie/dist/peer/files/download/engine.js', 'coterie/tracker/store', 'coterie']) {
        try { import.meta.resolve(name); codes.push('resolved'); } catch (err) { codes.push(err.code); }
      }
      console.log(JSON.stringify(codes));
    `);
    expect(codes).toEqual([
      'ERR_PACKAGE_PATH_NOT_EXPORTED',
      'ERR_PACKAGE_PATH_NOT_EXPORTED',
      'ERR_PACKAGE_PATH_NOT_EXPORTED',
    ]);
  });

  it('type-checks a consumer against the declarations', () => {
    writeFileSync(
      join(scratch, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          target: 'ES2022',
          strict: true,
          noEmit: true,
          types: ['node'],
          skipLibCheck: true,
        },
        files: ['consumer.ts'],
      }),
    );
    writeFileSync(
      join(scratch, 'consumer.ts'),
      `import { type RunningTracker, startTracker, type TrackerOptions } from 'coterie/tracker';
import { callDaemon, type PeerDaemon, type PeerDaemonOptions, startPeerDaemon } from 'coterie/peer';

const options: TrackerOptions = { dataDir: '/tmp/t', port: 0 };
export const tracker: Promise<RunningTracker> = startTracker(options);
const peerOptions: PeerDaemonOptions = { dataDir: '/tmp/p', trackers: ['http://127.0.0.1:7070'] };
export const peer: Promise<PeerDaemon> = startPeerDaemon(peerOptions);
export const call = callDaemon;
// The declarations are typed, not any: a wrong option is a compile error.
// @ts-expect-error port is a number
export const wrong = startTracker({ dataDir: '/tmp/t', port: 'seven' });
`,
    );
    const r = spawnSync(
      process.execPath,
      [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', scratch],
      {
        cwd: scratch,
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  }, 90_000);
});
