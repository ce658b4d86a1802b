import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { FileList, VersionList } from '../../src/protocol/api.js';
import { randomFile, stop, until } from '../helpers/cli-harness.js';
import { cliSwarm } from '../helpers/cli-swarm.js';
import { storageTrackerArgs } from '../helpers/storage-peer-fake.js';
import { daemonCall, signUp, storageGroup } from '../helpers/storage-swarm.js';

// Storage peers in a loop of SIGKILLs and restarts (issue 16) while alice writes new versions
// of three names with compare-and-set and bob downloads them: four storage peers, min 2, one
// of them down at a time. At the end every retained version has 2 verified replicas on live
// storage peers, every acknowledged version is listed under its number, and every one
// downloads byte-identical from the storage peers alone once alice has left. The schedule
// comes from a seed printed on failure.
const GRACE_MS = 1500;
const STORAGE = ['s1', 's2', 's3', 's4'] as const;
type Name = 'alice' | 'bob' | (typeof STORAGE)[number];
const GROUP = 'chaos';
const NAMES = ['a.bin', 'b.bin', 'c.bin'];
/** Four versions of each name: all inside the group's default retention of five. */
const VERSIONS = 4;
const SEED = Number(process.env.COTERIE_CHAOS_SEED ?? Date.now() % 1_000_000);

/** mulberry32: a small seeded generator, so a failing schedule can be run again. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

describe('storage peers killed and restarted under updates and downloads', { timeout: 280_000 }, () => {
  const swarm = cliSwarm<Name>('coterie-storage-chaos-');
  const run = daemonCall<Name>(swarm.dir);
  const peerArgs = (n: Name) => ['--zone', n, '--scrub-pause-ms', '500'];

  beforeAll(async () => {
    await swarm.startTracker(storageTrackerArgs(GRACE_MS, 'loose'));
    for (const n of ['alice', 'bob', ...STORAGE] as Name[]) await swarm.startPeer(n, peerArgs(n));
    await signUp(run, ['alice', 'bob', ...STORAGE]);
    await storageGroup(run, 'alice', GROUP, ['bob', ...STORAGE], { peers: STORAGE, quota: '20MiB' });
    await run('alice', 'set_replication', GROUP, '2');
  }, 150_000);

  it('ends with every version at min replicas, none lost, each byte-identical', async () => {
    const random = rng(SEED);
    const why = `seed ${SEED} (COTERIE_CHAOS_SEED=${SEED} runs it again)`;
    /** name → version → sha-256 of what alice wrote, for every acknowledged version. */
    const written = new Map<string, Map<number, string>>(NAMES.map((n) => [n, new Map()]));
    let step = 0;
    const content = async (file = `v${++step}.bin`) => {
      const path = join(swarm.root, 'content', file);
      await randomFile(path, 40 * 1024 + Math.floor(random() * 200 * 1024));
      return path;
    };
    for (const name of NAMES) {
      // upload_file names the share after its path.
      const path = await content(name);
      await run('alice', 'upload_file', path, GROUP);
      written.get(name)!.set(1, sha(path));
    }

    const writes = (async () => {
      for (let v = 2; v <= VERSIONS; v++) {
        for (const name of NAMES) {
          const path = await content();
          const r = await run<{ version: number }>(
            'alice',
            'update_file',
            GROUP,
            name,
            path,
            '--if-version',
            String(v - 1),
          );
          expect(r.version, why).toBe(v);
          written.get(name)!.set(v, sha(path));
        }
      }
    })();
    const reads = (async () => {
      for (let i = 0; i < 6; i++) {
        const name = NAMES[Math.floor(random() * NAMES.length)]!;
        const known = [...written.get(name)!];
        const [version, digest] = known[Math.floor(random() * known.length)]!;
        const dest = join(swarm.root, 'bob', `read-${i}.bin`);
        await run('bob', 'download_file', GROUP, name, dest, '--version', String(version), '--wait').catch(
          (err: Error) => {
            throw new Error(`${name} v${version}: ${err.message}; ${why}`);
          },
        );
        expect(sha(dest), `${name} v${version}, ${why}`).toBe(digest);
      }
    })();
    const kills = (async () => {
      for (let round = 0; round < 5; round++) {
        const victim = STORAGE[Math.floor(random() * STORAGE.length)]!;
        await stop(swarm.procs.get(victim)!.child, random() < 0.7 ? 'SIGKILL' : 'SIGTERM');
        // Sometimes back within its grace, sometimes after it (a repair runs).
        await new Promise((r) => setTimeout(r, random() * 2 * GRACE_MS));
        await swarm.startPeer(victim, peerArgs(victim));
      }
    })();
    await Promise.all([writes, reads, kills]);

    // Every version of every name held twice over on live storage peers, and listed.
    await until(
      'every retained version at 2 live replicas',
      async () => {
        for (const name of NAMES) {
          const v = await run<VersionList>('bob', 'list_versions', GROUP, name);
          if (v.versions.some((x) => x.replicas!.filter((r) => r.state === 'live').length < 2)) return false;
        }
        return true;
      },
      90_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; ${why}`);
    });
    const files = (await run<FileList>('bob', 'list_files', GROUP)).files;
    expect(files.map((f) => [f.name, f.version, (f.replicas?.live ?? 0) >= 2]).sort(), why).toEqual(
      NAMES.map((n) => [n, VERSIONS, true]),
    );
    // The writer leaves: what bob gets now comes from the storage peers alone.
    await stop(swarm.procs.get('alice')!.child);
    for (const name of NAMES) {
      const v = await run<VersionList>('bob', 'list_versions', GROUP, name);
      expect(
        v.versions.map((x) => x.version),
        why,
      ).toEqual([4, 3, 2, 1]);
      for (const [version, digest] of written.get(name)!) {
        const dest = join(swarm.root, 'bob', `${name}-v${version}.bin`);
        await run('bob', 'download_file', GROUP, name, dest, '--version', String(version), '--wait');
        expect(sha(dest), `${name} v${version}, ${why}`).toBe(digest);
      }
    }
  });
});
