import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FileList, StorageList } from '../../src/protocol/api.js';
import { randomFile } from '../helpers/cli-harness.js';
import { filesUnder } from '../helpers/folder-group.js';
import { type Home, NetnsLab, PUBLIC_HOST, skipWithoutNetns } from '../helpers/netns.js';
import { tempDir } from '../helpers/temp-dir.js';
import { until } from '../helpers/wait.js';

// Relayed storage fetches (issue 16 with issue 19's relays), behind real NATs: alice shares from a
// home behind a symmetric NAT, the group's storage peer sits in a home behind a port-restricted
// one, so neither can dial the other and the tracker cannot dial alice back (she reserves on its
// relay). The storage peer still replicates a file and a folder share: its fetches dial as
// downloads do, direct, else through the holder's relay. What it received is read off its own
// byte counters: through the relay, nothing from alice's router.

const skip = skipWithoutNetns('test/integration/netns-storage-relay.test.ts');
const FILE_BYTES = 2 * 1024 * 1024 + 9;
const TREE: Record<string, number> = {
  'a.txt': 1_000,
  'empty.txt': 0,
  'sub/b.bin': 400_000,
  'sub/deep/c.bin': 90_000,
};

describe.skipIf(skip)('a storage peer behind NAT replicates through the relay', { timeout: 240_000 }, () => {
  const scratch = tempDir('coterie-netns-storage-');
  let lab: NetnsLab;
  let alice: Home;
  let store: Home;
  const dir = (n: string) => join(scratch.path, n);
  const json = <T>(h: Home, who: string, ...args: string[]) =>
    JSON.parse(lab.coterie(h.home, ['--data-dir', dir(who), '--json', ...args])) as T;
  const run = (h: Home, who: string, ...args: string[]) =>
    lab.coterie(h.home, ['--data-dir', dir(who), ...args]);

  beforeAll(async () => {
    // This branch's namespaces: stfold<id>*.
    lab = new NetnsLab('stfold');
    try {
      alice = lab.addHome('symmetric');
      store = lab.addHome('restricted');
      const tracker = await lab.startTracker(dir('tracker'));
      await Promise.all([
        lab.startMember(alice.home, { name: 'alice', address: alice.lan, dataDir: dir('alice'), tracker }),
        lab.startMember(store.home, { name: 'keeper', address: store.lan, dataDir: dir('keeper'), tracker }),
      ]);
      run(alice, 'alice', 'create_group', 'family');
      run(store, 'keeper', 'join_group', 'family');
      run(alice, 'alice', 'accept_request', 'family', 'keeper');
      run(store, 'keeper', 'offer_storage', 'family', '50MiB');
      // What the storage peer receives from the relay, and from alice's router (a direct path).
      lab.addCounters(store.home, {
        relay: `ip saddr ${PUBLIC_HOST} tcp sport 7072`,
        alice: `ip saddr ${alice.wan}`,
      });
      await until(
        'alice reserved on the relay',
        () => json<{ reach?: { relay?: string } }>(alice, 'alice', 'status').reach?.relay !== undefined,
        30_000,
        250,
      );
    } catch (err) {
      lab.cleanUp();
      throw err;
    }
  }, 180_000);

  afterAll(() => {
    const made = lab?.name('');
    lab?.cleanUp();
    scratch.remove();
    if (made !== undefined) expect(lab.leftOver(), `namespaces ${made}* left behind`).toEqual([]);
  });

  it('a file and a folder reach the storage peer through the relay, verified and held', async () => {
    const file = join(scratch.path, 'files', 'report.bin');
    await randomFile(file, FILE_BYTES);
    const tree = join(scratch.path, 'files', 'album');
    for (const [path, size] of Object.entries(TREE)) {
      mkdirSync(dirname(join(tree, path)), { recursive: true });
      writeFileSync(join(tree, path), Buffer.alloc(size, path.length));
    }
    run(alice, 'alice', 'upload_file', file, 'family');
    run(alice, 'alice', 'upload_file', tree, 'family');
    run(alice, 'alice', 'set_replication', 'family', '1');
    await until(
      'both replicas held',
      () => json<StorageList>(store, 'keeper', 'list_storage', 'family').peers[0]?.replicasHeld === 2,
      90_000,
      500,
    );
    const ids = Object.fromEntries(
      json<FileList>(store, 'keeper', 'list_files', 'family').files.map((f) => [f.name, f.fileId]),
    );
    const replica = (name: string) => join(dir('keeper'), 'storage', 'family', ids[name]!);
    expect(readFileSync(replica('report.bin')).equals(readFileSync(file))).toBe(true);
    expect(filesUnder(replica('album'))).toEqual(TREE);
    for (const path of Object.keys(TREE)) {
      expect(readFileSync(join(replica('album'), path)).equals(readFileSync(join(tree, path))), path).toBe(
        true,
      );
    }
    const bytes = lab.readCounters(store.home);
    const total = FILE_BYTES + Object.values(TREE).reduce((a, b) => a + b, 0);
    expect(bytes.relay ?? 0, 'bytes through the relay').toBeGreaterThanOrEqual(total);
    expect(bytes.alice ?? 0, "bytes from alice's router").toBeLessThan(64 * 1024);
  });
});
