import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callDaemon } from '../../src/peer/control/client.js';
import type { FileList, StorageList, VersionList } from '../../src/protocol/api.js';
import type { StatusView } from '../../src/protocol/control.js';
import { coterie, type Daemon, randomFile, startProcess, stop, until } from '../helpers/cli-harness.js';
import { flipByte } from '../helpers/flip-byte.js';
import { storageTrackerArgs } from '../helpers/storage-peer-fake.js';
import { tempDir, trackerPerFile } from '../helpers/tracker.js';

// Storage peers as real `coterie peer` processes against a real tracker (issue 16): replicas
// fetched, verified, served and repaired end to end. A 1.5 s storage grace; loose heartbeats, which
// a daemon busy on a loaded machine answers in time (a killed one's session ends with its socket).
const GRACE_MS = 1500;
const ft = trackerPerFile(storageTrackerArgs(GRACE_MS, 'loose'));

type Name = 'alice' | 'bob' | 's1' | 's2' | 's3';
const NAMES: Name[] = ['alice', 'bob', 's1', 's2', 's3'];
const STORAGE: Name[] = ['s1', 's2', 's3'];
const FILE_BYTES = 300 * 1024 + 17;

describe('storage peers', { timeout: 60_000 }, () => {
  const root = tempDir('coterie-storage-');
  const dir = (n: Name) => join(root.path, n);
  const peers = new Map<Name, Daemon>();
  const startPeer = async (n: Name) => {
    peers.set(
      n,
      await startProcess(
        [
          'peer',
          '--data-dir',
          dir(n),
          '--tracker',
          ft.tracker.url,
          '--no-shell',
          '--zone',
          n,
          '--scrub-pause-ms',
          '300',
        ],
        /^peer [0-9a-f]{64} serving on/,
        join(root.path, `${n}.log`),
        // Five daemons start at once: a loaded machine takes its time.
        45_000,
      ),
    );
  };
  const run = <T>(n: Name, name: string, ...args: string[]) => callDaemon(dir(n), name, args) as Promise<T>;
  const storageOf = (group: string) => run<StorageList>('alice', 'list_storage', group);
  const heldBy = async (group: string) =>
    (await storageOf(group)).peers.filter((p) => p.replicasHeld > 0 && p.state === 'live');
  const peerIdOf = async (n: Name) => (await run<StatusView>(n, 'status')).peerId;

  /** A group owned by alice with bob and the storage peers in it; each storage peer offers `quota`. */
  const group = async (groupId: string, quotas: Partial<Record<Name, string>>) => {
    await run('alice', 'create_group', groupId);
    for (const n of ['bob', ...STORAGE] as Name[]) {
      await run(n, 'join_group', groupId);
      await run('alice', 'accept_request', groupId, n);
    }
    for (const n of STORAGE) await run(n, 'offer_storage', groupId, quotas[n] ?? '10MiB');
  };
  const share = async (groupId: string, name: string) => {
    const path = join(root.path, 'files', name);
    await randomFile(path, FILE_BYTES);
    await run('alice', 'upload_file', path, groupId);
    return path;
  };

  beforeAll(async () => {
    await Promise.all(NAMES.map(startPeer));
    for (const n of NAMES) {
      await run(n, 'create_user', n, `password-of-${n}`);
      await run(n, 'login', n, `password-of-${n}`);
    }
    await until('every peer connected', async () => {
      const all = await Promise.all(NAMES.map((n) => run<StatusView>(n, 'status')));
      return all.every((s) => s.tracker !== null);
    });
  }, 120_000);

  afterAll(async () => {
    await Promise.all([...peers.values()].map((p) => stop(p.child)));
    root.remove();
  }, 30_000);

  it('keeps a file available after its sharer leaves: two verified replicas serve bob byte-identical', async () => {
    await group('keep', {});
    const original = await share('keep', 'report.bin');
    const set = await run<{ min: number; max: number }>('alice', 'set_replication', 'keep', '2');
    expect(set).toMatchObject({ min: 2, max: 2 });
    await until('two verified replicas', async () => (await heldBy('keep')).length === 2);
    const listing = await storageOf('keep');
    expect(listing.replication.underReplicatedFiles).toBe(0);
    // list_files and list_versions count the same two verified copies, and name their holders.
    const [listed] = (await run<FileList>('bob', 'list_files', 'keep')).files;
    expect(listed!.replicas).toEqual({ live: 2, grace: 0, min: 2 });
    const [v1] = (await run<VersionList>('bob', 'list_versions', 'keep', 'report.bin')).versions;
    expect(v1!.replicas?.map((r) => r.userId).sort()).toEqual(
      listing.peers
        .filter((p) => p.replicasHeld > 0)
        .map((p) => p.userId)
        .sort(),
    );
    expect((await coterie(['--data-dir', dir('bob'), 'list_files', 'keep'])).out).toMatch(
      /report\.bin\s+v1\s+\S+ KiB\s+\d+\s+2\/2\s+alice/,
    );
    // A storage peer's status shows what it holds.
    const holders = listing.peers.filter((p) => p.replicasHeld > 0).map((p) => p.userId as Name);
    const status = await run<StatusView>(holders[0]!, 'status');
    expect(status.storage).toMatchObject({ replicas: 1, bytes: FILE_BYTES });
    // The replica is a file in the storage directory, private, not a download of the user's.
    const fileId = (await run<{ files: { fileId: string }[] }>('bob', 'list_files', 'keep')).files[0]!.fileId;
    const replica = join(dir(holders[0]!), 'storage', 'keep', fileId);
    expect(readFileSync(replica).equals(readFileSync(original))).toBe(true);
    expect(statSync(replica).mode & 0o077).toBe(0);
    expect((await run<{ downloads: unknown[] }>(holders[0]!, 'show_downloads')).downloads).toEqual([]);

    // alice stops sharing: only the storage peers have it now.
    await run('alice', 'stop_share', 'keep', 'report.bin');
    const dest = join(root.path, 'bob-report.bin');
    const got = await run<{ state: string; contributions?: { userId: string | null }[] }>(
      'bob',
      'download_file',
      'keep',
      'report.bin',
      dest,
      '--wait',
    );
    expect(got.state).toBe('completed');
    expect(readFileSync(dest).equals(readFileSync(original))).toBe(true);
    expect(got.contributions?.length).toBeGreaterThan(0);
    for (const c of got.contributions ?? []) expect(holders).toContain(c.userId);
  });

  it('a storage peer whose quota is too small is skipped', async () => {
    await group('tight', { s1: '100KiB' });
    await share('tight', 'big.bin');
    await run('alice', 'set_replication', 'tight', '2');
    await until('two verified replicas', async () => (await heldBy('tight')).length === 2);
    const users = (await heldBy('tight')).map((p) => p.userId).sort();
    expect(users).toEqual(['s2', 's3']);
  });

  it('scrub: a replica whose bytes flipped on disk is reported corrupt and repaired elsewhere', async () => {
    await group('scrub', {});
    await share('scrub', 'photo.bin');
    await run('alice', 'set_replication', 'scrub', '1');
    await until('one verified replica', async () => (await heldBy('scrub')).length === 1);
    const [first] = await heldBy('scrub');
    const victim = first!.userId as Name;
    const fileId = (await run<{ files: { fileId: string }[] }>('bob', 'list_files', 'scrub')).files[0]!
      .fileId;
    const path = join(dir(victim), 'storage', 'scrub', fileId);
    flipByte(path, 1000);
    await until('repaired on another storage peer', async () => {
      const held = await heldBy('scrub');
      return held.length === 1 && held[0]!.userId !== victim;
    });
    await until('the damaged copy deleted', () => !existsSync(path));
  });

  it('withdraw_storage --now: the replica is dropped from that disk and placed on another peer', async () => {
    await group('move', {});
    await share('move', 'plan.bin');
    await run('alice', 'set_replication', 'move', '1');
    await until('one verified replica', async () => (await heldBy('move')).length === 1);
    const holder = (await heldBy('move'))[0]!.userId as Name;
    const fileId = (await run<{ files: { fileId: string }[] }>('bob', 'list_files', 'move')).files[0]!.fileId;
    const path = join(dir(holder), 'storage', 'move', fileId);
    expect(statSync(path).size).toBe(FILE_BYTES);
    expect(await run(holder, 'withdraw_storage', 'move', '--now')).toMatchObject({ ended: true });
    await until('held by another peer', async () => {
      const held = await heldBy('move');
      return held.length === 1 && held[0]!.userId !== holder;
    });
    await until('gone from the old holder', () => !existsSync(path));
    const status = await run<StatusView>(holder, 'status');
    expect(status.storage?.offers.map((o) => o.groupId)).not.toContain('move');
  });

  it('refuses bad input: a malformed quota, set_replication by a non-owner, an offer by a non-member', async () => {
    await run('alice', 'create_group', 'closed');
    const as = (n: Name, ...args: string[]) => coterie(['--data-dir', dir(n), ...args]);
    for (const [args, code] of [
      [['offer_storage', 'closed', '50 parsecs'], 'USAGE'],
      [['offer_storage', 'closed', 'lots'], 'USAGE'],
      [['set_replication', 'closed', 'two'], 'USAGE'],
      [['set_replication', 'keep', '1'], 'NOT_OWNER'],
      [['offer_storage', 'closed', '1GiB'], 'NOT_A_MEMBER'],
    ] as const) {
      const r = await as('s1', ...args);
      expect(r.code, `${args.join(' ')}: ${r.out}`).not.toBe(0);
      expect(r.err, args.join(' ')).toContain(`[${code}]`);
    }
    const table = await as('alice', 'list_storage', 'keep');
    expect(table.out).toMatch(/USER\s+PEER\s+ZONE\s+QUOTA\s+USED\s+HELD\s+STATE\s+LAST HEARTBEAT/);
    expect(table.out).toContain('10.0 MiB');
  });

  it('a SIGKILLed storage peer: after the grace its replica is back at min on another one', async () => {
    await group('crash', {});
    await share('crash', 'log.bin');
    await run('alice', 'set_replication', 'crash', '2');
    await until('two verified replicas', async () => (await heldBy('crash')).length === 2);
    const before = (await heldBy('crash')).map((p) => p.userId as Name);
    const victim = before[0]!;
    const victimPeer = await peerIdOf(victim);
    await stop(peers.get(victim)!.child, 'SIGKILL');
    const killedAt = Date.now();
    await until('back at two replicas without the killed peer', async () => {
      const held = await heldBy('crash');
      return held.length === 2 && held.every((p) => p.peerId !== victimPeer);
    });
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual(GRACE_MS - 200);
    const spare = STORAGE.find((n) => !before.includes(n))!;
    expect((await heldBy('crash')).map((p) => p.userId)).toContain(spare);
    await startPeer(victim);
  });

  it('a restarted storage peer serves its replicas from peer.db and reports them held again', async () => {
    await group('restart', {});
    const original = await share('restart', 'book.bin');
    await run('alice', 'set_replication', 'restart', '1');
    await until('one verified replica', async () => (await heldBy('restart')).length === 1);
    const holder = (await heldBy('restart'))[0]!.userId as Name;
    await run('alice', 'stop_share', 'restart', 'book.bin');
    await stop(peers.get(holder)!.child);
    await startPeer(holder);
    await until('held and live again', async () => {
      const held = await heldBy('restart');
      return held.length === 1 && held[0]!.userId === holder;
    });
    expect((await run<StatusView>(holder, 'status')).storage?.replicas).toBeGreaterThanOrEqual(1);
    const dest = join(root.path, 'bob-book.bin');
    await run('bob', 'download_file', 'restart', 'book.bin', dest, '--wait');
    expect(readFileSync(dest).equals(readFileSync(original))).toBe(true);
  });
});
