// The set-up of the folder-share suites: a tracker and peers, each its own user logged in; the
// first creates group 'rel' and accepts the others; then it shares `src` (a folder) there.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
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
