// The set-up of the folder-share suites: a tracker and peers, each its own user logged in; the
// first creates group 'rel' and accepts the others; then it shares `src` (a folder) there.
import { chmodSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { expect } from 'vitest';
import type { CliSwarm } from './cli-swarm.js';

export async function shareFolderInGroup<N extends string>(
  swarm: CliSwarm<N>,
  names: readonly [N, ...N[]],
  src: string,
  expected: string,
  /** The tracker's flags, and each peer's (storage peers' scrub, a zone). */
  args: { tracker?: string[]; peer?: (n: N) => string[] } = {},
): Promise<void> {
  const { ok } = swarm;
  await swarm.startTracker(args.tracker);
  for (const n of names) {
    await swarm.startPeer(n, args.peer?.(n));
    await ok(n, 'create_user', n, `${n}-password`);
    await ok(n, 'login', n, `${n}-password`);
  }
  const [owner, ...members] = names;
  await ok(owner, 'create_group', 'rel');
  for (const n of members) {
    await ok(n, 'join_group', 'rel');
    await ok(owner, 'accept_request', 'rel', n);
  }
  const shared = await ok(owner, 'upload_file', src, 'rel');
  expect(shared.out).toContain(expected);
}

/** Every regular file under `dir`, relative, with its size. */
export function filesUnder(dir: string): Record<string, number> {
  const out: Record<string, number> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[relative(dir, p)] = statSync(p).size;
    }
  };
  walk(dir);
  return out;
}

/** The folder the folder suites share: nested, several pieces in its large files, an empty file and an executable. */
export const SAMPLE_TREE: Readonly<Record<string, number>> = {
  'README.md': 3_000,
  'bin/run.sh': 200,
  'docs/guide/intro.md': 70_000,
  'docs/index.md': 5_000,
  'empty.txt': 0,
  'media/a.bin': 300_000,
  'media/deep/b.bin': 1_200_000,
};

/** Writes SAMPLE_TREE under `dir`, each file of its own bytes, bin/run.sh executable. */
export function writeSampleTree(dir: string): void {
  let seed = 1;
  for (const [path, size] of Object.entries(SAMPLE_TREE)) {
    const abs = join(dir, path);
    mkdirSync(dirname(abs), { recursive: true });
    writeFileSync(abs, Buffer.alloc(size, seed++));
  }
  chmodSync(join(dir, 'bin/run.sh'), 0o755);
}
