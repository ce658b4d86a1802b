import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PeerDaemon, startPeerDaemon } from '../../src/peer/daemon.js';
import type { Notice, PeerEvent } from '../../src/peer/notices.js';
import type { FileList } from '../../src/protocol/api.js';
import { type RunningTracker, startTracker } from '../../src/tracker/index.js';
import { FramedConnection } from '../../src/wire/connection.js';
import type { Frame } from '../../src/wire/frames.js';
import { PROTOCOL_VERSION } from '../../src/wire/frames.js';
import { connectToPeer, createIdentity } from '../../src/wire/identity.js';
import { suiteTempDir } from '../helpers/temp-dir.js';
import { api, userToken } from '../helpers/tracker.js';
import { until } from '../helpers/wait.js';

// A real tracker and real peer daemons: a seeder whose shared file changes on disk stops
// serving and announcing it and tells its user; a downloader that lies about corrupt pieces
// of an unchanged file changes nothing.

const FAST = { backoffMs: [0, 20, 50, 100], jitter: 0 };
const MiB = 1024 * 1024;

describe('a seeder whose shared file changed', { timeout: 60_000 }, () => {
  const root = suiteTempDir('coterie-changed-').path;
  let tracker: RunningTracker;
  let alice: PeerDaemon;
  let bob: PeerDaemon;
  const notices: Notice[] = [];
  const events: PeerEvent[] = [];
  const files = join(root, 'files');
  mkdirSync(files);

  const daemon = (name: string) =>
    startPeerDaemon({
      dataDir: join(root, name),
      trackers: [tracker.url],
      pool: FAST,
      heartbeatIntervalMs: 1000,
      heartbeatTimeoutMs: 5000,
    });
  const startPeer = async (name: string) => {
    const d = await daemon(name);
    await d.execute('create_user', [name, `${name}-password`]);
    await d.execute('login', [name, `${name}-password`]);
    await until(`${name} connected`, async () => {
      const s = (await d.execute('status', [])) as { tracker: string | null };
      return s.tracker !== null;
    });
    return d;
  };
  const seedersOf = async (name: string) => {
    const list = (await bob.execute('list_files', ['films'])) as FileList;
    return list.files.find((f) => f.name === name)?.seeders ?? 0;
  };
  const share = async (name: string, bytes: number) => {
    const path = join(files, name);
    writeFileSync(path, randomBytes(bytes));
    await alice.execute('upload_file', [path, 'films']);
    await until(`${name} seeded`, async () => (await seedersOf(name)) === 1);
    return path;
  };

  beforeAll(async () => {
    tracker = await startTracker({
      dataDir: join(root, 'tracker'),
      port: 0,
      scryptLogN: 10,
      logLevel: 'silent',
      heartbeatIntervalMs: 1000,
      heartbeatTimeoutMs: 5000,
    });
    alice = await startPeer('alice');
    bob = await startPeer('bob');
    alice.on('notice', (n) => notices.push(n));
    alice.on('event', (e) => events.push(e));
    await alice.execute('create_group', ['films']);
    await bob.execute('join_group', ['films']);
    await alice.execute('accept_request', ['films', 'bob']);
  }, 30_000);

  afterAll(async () => {
    await bob?.stop();
    await alice?.stop();
    await tracker?.close();
  });

  it('stops serving and announcing it, tells its user, and no download completes from it', async () => {
    const path = await share('movie.mkv', 2 * MiB);
    // A region overwritten in place: same size, new mtime, different bytes.
    const fd = openSync(path, 'r+');
    writeSync(fd, randomBytes(64 * 1024), 0, 64 * 1024, MiB);
    closeSync(fd);
    const dest = join(root, 'bob-movie.mkv');
    const failure = await bob.execute('download_file', ['films', 'movie.mkv', dest, '--wait']).then(
      () => undefined,
      (e: unknown) => e as { code: string; message: string },
    );
    expect(failure?.code).toBe('NO_SEEDERS');
    expect(failure?.message).toMatch(/\('alice'\): this peer no longer serves that file: it was modified/);
    expect(existsSync(dest)).toBe(false);
    await until('alice is told', () =>
      notices.some((n) => n.text === "'movie.mkv' changed since you shared it: share it again or update it"),
    );
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'shareChanged', fileNames: ['movie.mkv'], path }),
    );
    await until('alice no longer a seeder', async () => (await seedersOf('movie.mkv')) === 0);
    const status = (await alice.execute('status', [])) as { changedShares: { fileName: string }[] };
    expect(status.changedShares).toEqual([expect.objectContaining({ fileName: 'movie.mkv', path })]);
    // Stopped and shared again (the new content is a new file id), it is served again.
    await alice.execute('stop_share', ['movie.mkv']);
    const again = (await alice.execute('status', [])) as { changedShares: unknown[] };
    expect(again.changedShares).toEqual([]);
    await alice.execute('upload_file', [path, 'films']);
    await until('seeded again', async () => (await seedersOf('movie.mkv')) === 1);
  });

  it('finds a share written while its daemon was down at the next start, and does not seed it', async () => {
    const path = await share('clip.bin', 128 * 1024);
    await alice.stop();
    const fd = openSync(path, 'r+');
    writeSync(fd, randomBytes(16), 0, 16, 0);
    closeSync(fd);
    alice = await daemon('alice');
    alice.on('notice', (n) => notices.push(n));
    alice.on('event', (e) => events.push(e));
    const status = (await alice.execute('status', [])) as { changedShares: { fileName: string }[] };
    expect(status.changedShares).toContainEqual(expect.objectContaining({ fileName: 'clip.bin' }));
    await until('alice back', async () => {
      const s = (await alice.execute('status', [])) as { tracker: string | null };
      return s.tracker !== null;
    });
    // Its other share is seeded again; the changed one is not.
    await until('movie seeded again', async () => (await seedersOf('movie.mkv')) === 1);
    expect(await seedersOf('clip.bin')).toBe(0);
  });

  it('keeps serving an unmodified file that a lying downloader reports corrupt', async () => {
    await share('notes.bin', 256 * 1024);
    const token = await userToken(tracker.url, 'bob');
    const liar = await createIdentity();
    const list = (await bob.execute('list_files', ['films'])) as FileList;
    const fileId = list.files.find((f) => f.name === 'notes.bin')!.fileId;
    const t = await api<{ ticket: string }>(
      tracker.url,
      'POST',
      `/v1/groups/films/files/${fileId}/tickets`,
      { peerId: liar.peerId },
      token,
    );
    expect(t.status).toBe(201);
    const me = (await alice.execute('status', [])) as {
      peerId: string;
      serving: { host: string; port: number };
    };
    const { socket } = await connectToPeer({
      ...me.serving,
      identity: liar,
      expectedPeerId: me.peerId,
    });
    const conn = new FramedConnection(socket, {});
    const frames: Frame[] = [];
    conn.on('frame', (f) => frames.push(f));
    try {
      conn.write({
        type: 'hello',
        version: PROTOCOL_VERSION,
        fileId,
        peerId: liar.peerId,
        ticket: t.body.ticket,
      });
      await until('seeder hello', () => frames.some((f) => f.type === 'bitfield'));
      for (let i = 0; i < 20; i++) conn.write({ type: 'corrupt', fileId, piece: i % 4 });
      await until('alice re-checked', () =>
        events.some((e) => e.type === 'corruptReported' && e.fileId === fileId && e.verdict === 'intact'),
      );
      const reports = events.filter((e) => e.type === 'corruptReported' && e.fileId === fileId);
      // One self-check at a time and a small burst: most of the twenty are not even hashed.
      expect(
        reports.filter((e) => e.type === 'corruptReported' && e.verdict === 'skipped').length,
      ).toBeGreaterThan(10);
      expect(reports.some((e) => e.type === 'corruptReported' && e.verdict === 'changed')).toBe(false);
      // Still served on the same connection, and still listed.
      conn.write({ type: 'request', piece: 0, offset: 0, length: 1024 });
      await until('a block', () => frames.some((f) => f.type === 'piece'));
      expect(conn.closed).toBe(false);
    } finally {
      await conn.close();
    }
    expect(events.some((e) => e.type === 'shareChanged' && e.fileId === fileId)).toBe(false);
    expect(await seedersOf('notes.bin')).toBe(1);
  });
});
