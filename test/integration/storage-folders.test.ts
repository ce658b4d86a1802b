import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { callDaemon } from '../../src/peer/control/client.js';
import type { FileList, StorageList } from '../../src/protocol/api.js';
import type { DownloadView, StatusView } from '../../src/protocol/control.js';
import { stop, until } from '../helpers/cli-harness.js';
import { cliSwarm } from '../helpers/cli-swarm.js';
import { flipByte } from '../helpers/flip-byte.js';
import { filesUnder, SAMPLE_TREE, shareFolderInGroup, writeSampleTree } from '../helpers/folder-group.js';
import { storageTrackerArgs } from '../helpers/storage-peer-fake.js';

// Storage peers holding a folder share (issues 16 and 17) as real processes: every file of the
// tree fetched (its manifest in pages), verified, held only once complete and served as one
// share; the folder downloads whole and by --only from the storage peers after its sharer has
// stopped; a flipped byte in one file of a folder replica is found by the scrub and repaired
// from the other storage peer. A folder missing one file's pieces is never counted held.

type Name = 'alice' | 'bob' | 's1' | 's2' | 's3';
const STORAGE = ['s1', 's2', 's3'] as const;
const GRACE_MS = 1500;
const STORAGE_ARGS = (n: string) => ['--zone', n, '--scrub-pause-ms', '300'];

const TREE = SAMPLE_TREE;
const TOTAL = Object.values(TREE).reduce((a, b) => a + b, 0);

describe('storage peers hold folder shares', { timeout: 120_000 }, () => {
  const swarm = cliSwarm<Name>('coterie-storage-folders-');
  const { root, ok } = swarm;
  const src = join(root, 'files', 'release');
  const run = <T>(n: Name, name: string, ...args: string[]) =>
    callDaemon(swarm.dir(n), name, args) as Promise<T>;
  const holders = async () =>
    (await run<StorageList>('bob', 'list_storage', 'rel')).peers
      .filter((p) => p.replicasHeld > 0 && p.state === 'live')
      .map((p) => p.userId as Name)
      .sort();
  let fileId = '';
  const replicaDir = (n: Name) => join(swarm.dir(n), 'storage', 'rel', fileId);
  const sameAsSource = (dir: string, paths: string[]) => {
    for (const path of paths) {
      expect(readFileSync(join(dir, path)).equals(readFileSync(join(src, path))), path).toBe(true);
    }
  };

  beforeAll(async () => {
    writeSampleTree(src);
    await shareFolderInGroup(swarm, ['alice', 'bob', ...STORAGE], src, "sharing folder 'release' (7 files", {
      tracker: storageTrackerArgs(GRACE_MS, 'loose'),
      peer: (n) => (n.startsWith('s') ? STORAGE_ARGS(n) : []),
    });
    for (const n of STORAGE) await ok(n, 'offer_storage', 'rel', '20MiB');
    fileId = (await run<FileList>('bob', 'list_files', 'rel')).files[0]!.fileId;
    await until('the storage peers connected', async () => {
      const all = await Promise.all(STORAGE.map((n) => run<StatusView>(n, 'status')));
      return all.every((s) => s.tracker !== null);
    });
  }, 90_000);

  it('a folder with one file its sharer cannot serve is fetched but never counted held, until that file comes back', async () => {
    await ok('alice', 'create_group', 'part');
    await ok('s1', 'join_group', 'part');
    await ok('alice', 'accept_request', 'part', 's1');
    await ok('s1', 'offer_storage', 'part', '20MiB');
    const broken = join(root, 'files', 'broken');
    const back = join(broken, 'z/held-back.bin');
    const content = Buffer.alloc(300_000, 7);
    mkdirSync(dirname(back), { recursive: true });
    writeFileSync(join(broken, 'a.bin'), Buffer.alloc(200_000, 3));
    writeFileSync(back, content);
    await ok('alice', 'upload_file', broken, 'part');
    // Shorter than shared: alice refuses its pieces (NOT_SHARING); the rest of the tree serves.
    writeFileSync(back, content.subarray(1));
    const id = (await run<FileList>('alice', 'list_files', 'part')).files[0]!.fileId;
    await ok('alice', 'set_replication', 'part', '1');
    await until(
      'a.bin fetched, the folder not complete',
      async () => {
        const fetching = (await run<StatusView>('s1', 'status')).storage?.fetching ?? [];
        return fetching.some((f) => f.fileId === id && f.doneBytes >= 200_000);
      },
      60_000,
    );
    const part = (await run<StorageList>('alice', 'list_storage', 'part')).peers;
    expect(part.map((p) => p.replicasHeld)).toEqual([0]);
    expect((await run<FileList>('alice', 'list_files', 'part')).files[0]!.replicas).toMatchObject({
      live: 0,
    });
    // The file comes back as shared: the next attempt completes the folder, and only then is it held.
    writeFileSync(back, content);
    await until(
      'held once complete',
      async () => (await run<StorageList>('alice', 'list_storage', 'part')).peers[0]!.replicasHeld === 1,
      90_000,
    );
    const kept = join(swarm.dir('s1'), 'storage', 'part', id);
    expect(filesUnder(kept)).toEqual({ 'a.bin': 200_000, 'z/held-back.bin': 300_000 });
    expect(readFileSync(join(kept, 'z/held-back.bin')).equals(content)).toBe(true);
  });

  it('two storage peers hold every file of the tree; it downloads whole and by --only after the sharer stops', async () => {
    await ok('alice', 'set_replication', 'rel', '2');
    await until('two storage peers hold the folder', async () => (await holders()).length === 2, 60_000);
    const [listed] = (await run<FileList>('bob', 'list_files', 'rel')).files;
    expect(listed!.replicas).toMatchObject({ live: 2, min: 2 });
    for (const n of await holders()) {
      // Counted held only once complete: every file of the tree is at its place, byte-identical.
      expect(filesUnder(replicaDir(n))).toEqual(TREE);
      sameAsSource(replicaDir(n), Object.keys(TREE));
      expect(statSync(replicaDir(n)).mode & 0o077).toBe(0);
      // s1 also holds group 'part''s folder (500,000 bytes).
      const other = n === 's1' ? { replicas: 1, bytes: 500_000 } : { replicas: 0, bytes: 0 };
      expect((await run<StatusView>(n, 'status')).storage).toMatchObject({
        replicas: 1 + other.replicas,
        bytes: TOTAL + other.bytes,
      });
    }

    // The sharer stops: only the storage peers have the folder now.
    await stop(swarm.procs.get('alice')!.child);
    swarm.procs.delete('alice');
    const whole = join(root, 'bob-whole');
    const got = await run<DownloadView>('bob', 'download_file', 'rel', 'release', whole, '--wait');
    expect(got.state).toBe('completed');
    expect(filesUnder(whole)).toEqual(TREE);
    sameAsSource(whole, Object.keys(TREE));
    expect(statSync(join(whole, 'bin/run.sh')).mode & 0o111).not.toBe(0);
    const from = await holders();
    for (const c of got.contributions ?? []) expect(from).toContain(c.userId);

    const docs = join(root, 'bob-docs');
    await ok('bob', 'download_file', 'rel', 'release', docs, '--only', 'docs/**', '--wait');
    const onlyDocs = Object.fromEntries(Object.entries(TREE).filter(([p]) => p.startsWith('docs/')));
    expect(filesUnder(docs)).toEqual(onlyDocs);
    sameAsSource(docs, Object.keys(onlyDocs));
    expect(existsSync(join(docs, 'media'))).toBe(false);
  });

  it('scrub: a flipped byte in one file of a folder replica is reported, and the folder repaired from the other holder', async () => {
    const before = await holders();
    expect(before).toHaveLength(2);
    const victim = before[0]!;
    // Same size and mtime: only re-hashing can tell.
    flipByte(join(replicaDir(victim), 'media/deep/b.bin'), 900_000);
    const spare = STORAGE.find((n) => !before.includes(n))!;
    await until(
      'repaired on the spare storage peer',
      async () => {
        const now = await holders();
        return now.length === 2 && now.includes(spare) && !now.includes(victim);
      },
      60_000,
    );
    await until('the damaged folder deleted', () => !existsSync(replicaDir(victim)));
    // alice is gone: the spare fetched every file from the other storage peer.
    expect(filesUnder(replicaDir(spare))).toEqual(TREE);
    sameAsSource(replicaDir(spare), Object.keys(TREE));
  });

  it('a restarted storage peer serves its folder replica from peer.db, the only copy online', async () => {
    const [kept, other] = await holders();
    // The other copy goes first: the restarted peer has nobody to fetch the folder from again.
    await stop(swarm.procs.get(other!)!.child);
    await stop(swarm.procs.get(kept!)!.child);
    await swarm.startPeer(kept!, STORAGE_ARGS(kept!));
    await until(
      'the restarted peer holds the folder again',
      async () => (await holders()).includes(kept!),
      60_000,
    );
    const dest = join(root, 'bob-again');
    const got = await run<DownloadView>('bob', 'download_file', 'rel', 'release', dest, '--wait');
    expect(got.state).toBe('completed');
    sameAsSource(dest, Object.keys(TREE));
    expect(readFileSync(join(swarm.dir(kept!), 'peer.log'), 'utf8')).not.toContain('replica unusable');
  });
});
