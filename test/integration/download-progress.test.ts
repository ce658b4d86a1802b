import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PeerDaemon, startPeerDaemon } from '../../src/peer/daemon.js';
import type { FileList } from '../../src/protocol/api.js';
import type { StatusView } from '../../src/protocol/control.js';
import {
  DOWNLOAD_PROGRESS_PER_SEC,
  hasPiece,
  type PeerEvent,
  type TransferProgress,
} from '../../src/protocol/peer-events.js';
import { type RunningTracker, startTracker } from '../../src/tracker/index.js';
import { tempDir } from '../helpers/temp-dir.js';
import { until } from '../helpers/wait.js';

// Real tracker and peer daemons: a download from two seeders reports its progress as typed
// `downloadProgress` events, at most 4 a second, each with the seeders (address, user, pieces)
// and the bitfield of verified pieces, the last one full.

const FAST = { backoffMs: [0, 20, 50, 100], jitter: 0 };
const MiB = 1024 * 1024;
/** Each seeder's upload cap: the 6 MiB file takes about 1.5 s from both, long enough to see progress. */
const UPLOAD_LIMIT = 2 * MiB;

describe('download progress as PeerEvents', { timeout: 60_000 }, () => {
  const root = tempDir('coterie-progress-');
  let tracker: RunningTracker;
  const peers: PeerDaemon[] = [];

  const startPeer = async (name: string) => {
    const d = await startPeerDaemon({
      dataDir: join(root.path, name),
      trackers: [tracker.url],
      pool: FAST,
      heartbeatIntervalMs: 1000,
      heartbeatTimeoutMs: 5000,
      uploadLimitBytesPerSec: UPLOAD_LIMIT,
      ui: false,
    });
    peers.push(d);
    await d.execute('create_user', [name, `${name}-password`]);
    await d.execute('login', [name, `${name}-password`]);
    await until(
      `${name} connected`,
      async () => ((await d.execute('status', [])) as StatusView).tracker !== null,
    );
    return d;
  };

  beforeAll(async () => {
    tracker = await startTracker({
      dataDir: join(root.path, 'tracker'),
      port: 0,
      scryptLogN: 10,
      logLevel: 'silent',
      heartbeatIntervalMs: 1000,
      heartbeatTimeoutMs: 5000,
    });
    const [alice, carol, bob] = [await startPeer('alice'), await startPeer('carol'), await startPeer('bob')];
    await alice!.execute('create_group', ['films']);
    for (const [d, name] of [
      [carol!, 'carol'],
      [bob!, 'bob'],
    ] as const) {
      await d.execute('join_group', ['films']);
      await alice!.execute('accept_request', ['films', name]);
    }
  }, 30_000);

  afterAll(async () => {
    for (const p of peers) await p.stop();
    await tracker?.close();
    root.remove();
  });

  it('carries both seeders and a bitfield that fills, at most 4 a second', async () => {
    const [alice, carol, bob] = peers as [PeerDaemon, PeerDaemon, PeerDaemon];
    const source = join(root.path, 'film.bin');
    writeFileSync(source, randomBytes(6 * MiB));
    await alice.execute('upload_file', [source, 'films']);
    await carol.execute('upload_file', [source, 'films']);
    await until('two seeders', async () => {
      const list = (await bob.execute('list_files', ['films'])) as FileList;
      return list.files[0]?.seeders === 2;
    });
    const seen: { at: number; progress: TransferProgress }[] = [];
    bob.on('event', (e: PeerEvent) => {
      if (e.type === 'downloadProgress') seen.push({ at: Date.now(), progress: e.progress });
    });
    const dest = join(root.path, 'bob-film.bin');
    const startedAt = Date.now();
    await bob.execute('download_file', ['films', 'film.bin', dest, '--wait']);
    const tookMs = Date.now() - startedAt;
    expect(readFileSync(dest).equals(readFileSync(source))).toBe(true);

    // Coalesced: the engine reports every 250 ms at most, plus once as it completes.
    expect(seen.length).toBeGreaterThanOrEqual(3);
    expect(seen.length).toBeLessThanOrEqual(Math.ceil((tookMs / 1000) * DOWNLOAD_PROGRESS_PER_SEC) + 2);
    const gaps = seen.slice(1, -1).map((s, i) => s.at - seen[i]!.at);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(1000 / DOWNLOAD_PROGRESS_PER_SEC - 50);

    const last = seen.at(-1)!.progress;
    const statusOf = async (d: PeerDaemon) => (await d.execute('status', [])) as StatusView;
    const [a, c] = [await statusOf(alice), await statusOf(carol)];
    expect(last).toMatchObject({ fileName: 'film.bin', groupId: 'films', dest, size: 6 * MiB });
    expect(last.piecesVerified).toBe(last.pieceCount);
    const bits = Buffer.from(last.bitfield, 'base64');
    expect(bits.length).toBe(Math.ceil(last.pieceCount / 8));
    for (let i = 0; i < last.pieceCount; i++) expect(hasPiece(bits, i)).toBe(true);
    // Both seeders, with where they were dialled and who runs them, and what each served.
    const byUser = Object.fromEntries(last.peers.map((p) => [p.userId, p]));
    expect(byUser.alice).toMatchObject({ peerId: a.peerId, address: `${a.serving.host}:${a.serving.port}` });
    expect(byUser.carol).toMatchObject({ peerId: c.peerId, address: `${c.serving.host}:${c.serving.port}` });
    expect(byUser.alice!.piecesVerified + byUser.carol!.piecesVerified).toBe(last.pieceCount);
    expect(byUser.alice!.piecesVerified).toBeGreaterThan(0);
    expect(byUser.carol!.piecesVerified).toBeGreaterThan(0);
    // The map fills as it goes: an earlier event had some pieces and not all.
    expect(
      seen.some((s) => s.progress.piecesVerified > 0 && s.progress.piecesVerified < last.pieceCount),
    ).toBe(true);
  });
});
