import { mkdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { assertDistFresh, staleOutputs } from '../helpers/dist-freshness.js';
import { tempDir } from '../helpers/temp-dir.js';

let root = '';
const T0 = new Date('2026-01-01T00:00:00Z');
const LATER = new Date('2026-01-01T00:01:00Z');

/** Writes `path` under the temp root with the given mtime. */
function put(path: string, mtime: Date): void {
  const full = join(root, path);
  mkdirSync(dirname(full), { recursive: true });
  writeFileSync(full, '');
  utimesSync(full, mtime, mtime);
}

beforeEach(() => {
  root = tempDir('coterie-dist-').path;
  put('src/a.ts', T0);
  put('src/peer/download/b.ts', T0);
  put('dist/a.js', LATER);
  put('dist/peer/download/b.js', LATER);
});

describe('the dist/ freshness check', () => {
  it('passes a build newer than every source', () => {
    expect(staleOutputs(join(root, 'src'), join(root, 'dist'))).toEqual([]);
    expect(() => assertDistFresh(root)).not.toThrow();
  });

  it('names a source edited after the build, and one never built', () => {
    put('src/peer/download/b.ts', new Date('2026-01-01T00:02:00Z'));
    put('src/wire/new.ts', T0);
    expect(staleOutputs(join(root, 'src'), join(root, 'dist'))).toEqual([
      'peer/download/b.ts',
      'wire/new.ts',
    ]);
    expect(() => assertDistFresh(root)).toThrow(
      /dist\/ is older than src\/ \(peer\/download\/b\.ts, wire\/new\.ts\).*npm run build/,
    );
  });

  it('fails on a tree that was never built', () => {
    rmSync(join(root, 'dist'), { recursive: true });
    expect(() => assertDistFresh(root)).toThrow(/a\.ts, peer\/download\/b\.ts/);
  });
});
