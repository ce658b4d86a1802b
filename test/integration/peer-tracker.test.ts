import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PeerDaemon } from '../../src/peer/daemon.js';
import { startPeerDaemon } from '../../src/peer/daemon.js';
import type { PeerEvent } from '../../src/peer/notices.js';
import type { CoterieError } from '../../src/protocol/errors.js';
import { type RunningTracker, startTracker } from '../../src/tracker/index.js';
import { suiteTempDir } from '../helpers/temp-dir.js';
import { codeOf, until } from '../helpers/wait.js';

const FAST = { backoffMs: [0, 20, 50, 100], jitter: 0 };

describe('peer ↔ tracker: accounts, groups, session', () => {
  const root = suiteTempDir('coterie-pt-').path;
  const trackers: RunningTracker[] = [];
  const peers: PeerDaemon[] = [];
  let alice: PeerDaemon;
  let bob: PeerDaemon;
  const aliceEvents: PeerEvent[] = [];

  const startPeer = async (name: string, urls: string[]) => {
    const d = await startPeerDaemon({
      dataDir: join(root, name),
      trackers: urls,
      pool: FAST,
      heartbeatIntervalMs: 200,
      heartbeatTimeoutMs: 200,
    });
    peers.push(d);
    return d;
  };
  const status = async (d: PeerDaemon) =>
    (await d.execute('status', [])) as { userId: string | null; tracker: string | null };

  beforeAll(async () => {
    // Two trackers over one store: one key file (it wraps the signing keys the store holds).
    const store = join(root, 'tracker.db');
    const keyFile = join(root, 'tracker.key');
    for (const n of ['t1', 't2']) {
      trackers.push(
        await startTracker({
          dataDir: join(root, n),
          store,
          keyFile,
          port: 0,
          scryptLogN: 10,
          logLevel: 'silent',
          heartbeatIntervalMs: 200,
          heartbeatTimeoutMs: 200,
        }),
      );
    }
    alice = await startPeer('alice', [trackers[0]!.url, trackers[1]!.url]);
    bob = await startPeer('bob', [trackers[0]!.url, trackers[1]!.url]);
    alice.on('event', (e) => aliceEvents.push(e));
  });
  afterAll(async () => {
    for (const p of peers) await p.stop();
    for (const t of trackers) await t.close();
  });

  it('creates users, logs in, and refuses duplicates and wrong passwords', async () => {
    await alice.execute('create_user', ['alice', 'alice-password']);
    await bob.execute('create_user', ['bob', 'bob-password']);
    await expect(codeOf(bob.execute('create_user', ['bob', 'other-password']))).resolves.toBe('USER_EXISTS');
    await expect(codeOf(bob.execute('login', ['bob', 'wrong-password']))).resolves.toBe('BAD_CREDENTIALS');
    await expect(codeOf(bob.execute('list_groups', []))).resolves.toBe('NOT_LOGGED_IN');
    await alice.execute('login', ['alice', 'alice-password']);
    await bob.execute('login', ['bob', 'bob-password']);
    await until('alice connected', async () => (await status(alice)).tracker !== null);
    // The peer picks the least loaded of the cluster's trackers (both share the store here).
    expect(await status(alice)).toMatchObject({ userId: 'alice' });
    expect(trackers.map((t) => t.url)).toContain((await status(alice)).tracker);
  });

  it('runs the group story with advice in the errors', async () => {
    await alice.execute('create_group', ['films']);
    await expect(codeOf(bob.execute('create_group', ['films']))).resolves.toBe('GROUP_EXISTS');
    const err = await bob.execute('list_files', ['films']).catch((e: unknown) => e as CoterieError);
    expect(err).toMatchObject({ code: 'NOT_A_MEMBER' });
    expect((err as Error).message).toBe(
      "not a member of group 'films': ask its owner 'alice' to accept your join_group request",
    );
    await bob.execute('join_group', ['films']);
    await until('join event', () =>
      aliceEvents.some(
        (e) =>
          e.type === 'trackerEvent' &&
          e.event.type === 'join_requested' &&
          e.event.groupId === 'films' &&
          e.event.userId === 'bob',
      ),
    );
    const notOwner = (await bob
      .execute('accept_request', ['films', 'bob'])
      .catch((e: unknown) => e)) as Error;
    expect(notOwner).toMatchObject({ code: 'NOT_OWNER' });
    expect(notOwner.message).toContain("('alice')");
    expect(await alice.execute('list_requests', ['films'])).toMatchObject({ requests: [{ userId: 'bob' }] });
    await alice.execute('accept_request', ['films', 'bob']);
    const members = (await bob.execute('list_members', ['films'])) as { members: { userId: string }[] };
    expect(members.members.map((m) => m.userId).sort()).toEqual(['alice', 'bob']);
    await expect(codeOf(alice.execute('decline_request', ['films', 'bob']))).resolves.toBe(
      'REQUEST_NOT_FOUND',
    );
    await expect(codeOf(bob.execute('join_group', ['nope']))).resolves.toBe('GROUP_NOT_FOUND');
  });

  it('checks passwords early, advises on a taken file name, forgets shares of a group left', async () => {
    await expect(codeOf(bob.execute('create_user', ['carl', 'short']))).resolves.toBe('USAGE');
    const a = join(root, 'alice-files', 'clip.bin');
    const b = join(root, 'bob-files', 'clip.bin');
    mkdirSync(join(root, 'alice-files'));
    mkdirSync(join(root, 'bob-files'));
    writeFileSync(a, Buffer.alloc(100_000, 1));
    writeFileSync(b, Buffer.alloc(100_000, 2));
    await alice.execute('upload_file', [a, 'films']);
    const taken = (await bob.execute('upload_file', [b, 'films']).catch((e: unknown) => e)) as Error;
    expect(taken).toMatchObject({ code: 'FILE_NAME_TAKEN' });
    expect(taken.message).toContain("already has a different file named 'clip.bin'");
    await bob.execute('create_group', ['club']);
    const c = join(root, 'bob-files', 'other.bin');
    writeFileSync(c, Buffer.alloc(50_000, 3));
    await bob.execute('upload_file', [c, 'club']);
    await bob.execute('leave_group', ['club']);
    await expect(codeOf(bob.execute('stop_share', ['other.bin']))).resolves.toBe('NOT_SHARING');
  });

  it('stays logged in across a restart, fails over to the next tracker, logs out', async () => {
    await bob.stop();
    bob = await startPeer('bob', [trackers[0]!.url, trackers[1]!.url]);
    await until('bob back', async () => (await status(bob)).tracker !== null);
    expect((await status(bob)).userId).toBe('bob');
    const events: PeerEvent[] = [];
    bob.on('event', (e) => events.push(e));
    // The peer chose the least loaded tracker of the two: stop whichever it is on.
    const on = (await status(bob)).tracker!;
    const victim = trackers.find((t) => t.url === on)!;
    const other = trackers.find((t) => t.url !== on)!;
    await victim.close();
    await until('bob on the other tracker', async () => (await status(bob)).tracker === other.url);
    expect(events).toContainEqual({ type: 'trackerFailover', from: on, to: other.url });
    expect(events).toContainEqual({ type: 'trackerConnected', url: other.url });
    expect(await bob.execute('list_groups', [])).toMatchObject({ groups: [{ groupId: 'films' }] });
    await bob.execute('logout', []);
    expect(await status(bob)).toMatchObject({ userId: null, tracker: null });
    await expect(codeOf(bob.execute('list_groups', []))).resolves.toBe('NOT_LOGGED_IN');
  });
});
