import { access, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { type DownloadEvent, type DownloadOptions, download } from '../../src/peer/files/download/index.js';
import { createIdentity } from '../../src/wire/identity.js';
import { startPieceServer } from '../../src/wire/piece-server.js';
import { type FakeSeeder, startFakeSeeder } from '../fixtures/fake-seeder.js';
import {
  type ChildPeer,
  randomShare,
  seedInChild,
  startChildPeer,
  type TestFile,
  testCluster,
  transferSetup,
} from '../fixtures/transfer-harness.js';
import { opensDirect } from '../helpers/direct-io.js';
import { tempDir } from '../helpers/temp-dir.js';
import { codeOf, until } from '../helpers/wait.js';

// Real TLS 1.3 on loopback, real piece servers (in this process, or child
// processes where a test kills them); fake seeders only for misbehaviour.

const KiB = 1024;
const MiB = 1024 * KiB;
// Small pieces and a one-block pipe slow a few-MiB download enough to kill peers mid-way.
const SLOW = { initialDepthBlocks: 1, minDepthBlocks: 1, maxDepthBlocks: 1 };
const FAST_RETRY = { maxAttempts: 2, backoff: { baseMs: 20, maxMs: 50, jitter: 0 } };

const setup = transferSetup();
const { closers } = setup;
let dir: string;
beforeEach(() => {
  // Removed when the test finishes, after the setup's closers (they may hold files in it).
  dir = tempDir('coterie-transfer-').path;
});

async function seeders(file: TestFile, n: number) {
  const out = [];
  for (let i = 0; i < n; i++) out.push((await setup.seed(file)).info);
  return out;
}

async function childSeeders(
  file: TestFile,
  n: number,
): Promise<Array<ChildPeer & { info: DownloadOptions['seeders'][number] }>> {
  const out = [];
  for (let i = 0; i < n; i++) {
    const s = await seedInChild(dir, file, setup.cluster);
    closers.push(() => s.kill());
    out.push(s);
  }
  return out;
}

function options(file: TestFile, extra: Partial<DownloadOptions> = {}): Promise<DownloadOptions> {
  return setup.options(file, join(dir, 'out.bin'), extra);
}

async function sameBytes(path: string, file: TestFile): Promise<boolean> {
  return (await readFile(path)).equals(file.data);
}

const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

describe('transfer over TLS', () => {
  it.each([1, 3, 8])('downloads from %i seeder(s), size not a multiple of the piece size', async (n) => {
    const file = await randomShare(dir, 3 * MiB + 1234, 64 * KiB);
    const o = await options(file, { seeders: await seeders(file, n) });
    const result = await download(o).done;
    expect(await sameBytes(o.dest, file)).toBe(true);
    // Every whole piece went to the disk past the page cache, where the file system allows it.
    expect(result.directBytes).toBe(opensDirect(o.dest) ? 3 * MiB : 0);
    const d = result.distribution;
    expect(d.peers).toHaveLength(n);
    expect(d.fetchedPieces).toBe(file.manifest.pieces.length);
    expect(d.peers.reduce((a, p) => a + p.pieces, 0)).toBe(file.manifest.pieces.length);
    expect(await exists(`${o.dest}.part`)).toBe(false);
    expect(await exists(`${o.dest}.part.resume`)).toBe(false);
  });

  it('downloads a 0-byte file', async () => {
    const file = await randomShare(dir, 0);
    const o = await options(file, { seeders: await seeders(file, 1) });
    const result = await download(o).done;
    expect(result.bytes).toBe(0);
    expect((await stat(o.dest)).size).toBe(0);
  });

  it('refuses an existing destination unless asked to overwrite', async () => {
    const file = await randomShare(dir, 100 * KiB);
    const o = await options(file, { seeders: await seeders(file, 1) });
    await download(o).done;
    await expect(download(o).done).rejects.toMatchObject({ code: 'DESTINATION_EXISTS' });
    await download({ ...o, overwrite: true }).done;
    expect(await sameBytes(o.dest, file)).toBe(true);
  });

  it('completes when a seeder process is killed mid-download', async () => {
    const file = await randomShare(dir, 4 * MiB);
    const kids = await childSeeders(file, 3);
    const [victim, ...rest] = kids;
    const events: DownloadEvent[] = [];
    let killed = false;
    // The victim alone first, killed at its third verified piece, when the others are added: it
    // dies mid-download whatever the machine's load (with all three from the start, a victim that
    // connected last could serve its first piece last, and the download end before its close).
    const handle = download(
      await options(file, {
        seeders: [victim!.info],
        scheduler: SLOW,
        onEvent: (e) => {
          events.push(e);
          const fromVictim = events.filter(
            (x) => x.type === 'pieceVerified' && x.peerId === victim!.info.peerId,
          );
          if (!killed && fromVictim.length === 3) {
            killed = true;
            void victim!.kill('SIGKILL');
            for (const k of rest) handle.addSeeder(k.info);
          }
        },
      }),
    );
    const result = await handle.done;
    expect(await sameBytes(join(dir, 'out.bin'), file)).toBe(true);
    expect(killed).toBe(true);
    expect(events.some((e) => e.type === 'peerDisconnected' && e.peerId === victim!.info.peerId)).toBe(true);
    const victimRow = result.distribution.peers.find((p) => p.peerId === victim!.info.peerId);
    expect(victimRow?.state).toBe('gone');
    expect(victimRow?.pieces).toBeGreaterThanOrEqual(3);
  });

  it('bans a seeder at its third corrupt piece (struck for each before) and completes from the others', async () => {
    const file = await randomShare(dir, 1 * MiB);
    const evilId = await createIdentity();
    const evil = await startFakeSeeder({
      data: file.data,
      manifest: file.manifest,
      behaviour: 'corrupt',
      identity: evilId,
    });
    closers.push(() => evil.close());
    const good = await seeders(file, 1);
    const events: DownloadEvent[] = [];
    // The corrupting seeder alone first (its pieces in flight bring the three strikes); the good one
    // is added at the first, so that a good seeder ready first under load cannot take every piece.
    const o = await options(file, {
      seeders: [{ peerId: evil.peerId, address: { host: '127.0.0.1', port: evil.port }, score: 1 }],
      onEvent: (e) => {
        events.push(e);
        if (e.type === 'peerStruck' && e.strikes === 1) for (const s of good) handle.addSeeder(s);
      },
    });
    const handle = download(o);
    const result = await handle.done;
    expect(await sameBytes(o.dest, file)).toBe(true);
    const bans = events.filter((e) => e.type === 'peerBanned');
    expect(bans).toEqual([
      { type: 'peerBanned', peerId: evil.peerId, reason: expect.stringMatching(/wrong hash/) },
    ]);
    expect(result.distribution.peers.find((p) => p.peerId === evil.peerId)).toMatchObject({
      state: 'banned',
      pieces: 0,
      corruptPieces: 3,
    });
    expect(events.filter((e) => e.type === 'peerStruck')).toHaveLength(3);
    await until('the seeder hears of its bad pieces', () => evil.corruptReports.length === 3);
  });

  /** A fake seeder over TLS serving `file` with the pieces `bad` picks corrupted. */
  /** A fake seeder of `file` over TLS that serves what it is asked ('ok'), closed after the test. */
  async function fakeSeeder(file: TestFile, extra: Partial<Parameters<typeof startFakeSeeder>[0]>) {
    const seeder = await startFakeSeeder({
      data: file.data,
      manifest: file.manifest,
      behaviour: 'ok',
      identity: await createIdentity(),
      ...extra,
    });
    closers.push(() => seeder.close());
    return seeder;
  }
  const lyingSeeder = (file: TestFile, bad: (piece: number, nth: number) => boolean) =>
    fakeSeeder(file, { badPieces: bad });
  const infoOf = (s: FakeSeeder, score = 1) => ({
    peerId: s.peerId,
    address: { host: '127.0.0.1', port: s.port },
    score,
  });

  it('with a corrupted region at the only seeder: fetches every good piece, fails naming the bad ones, tells the seeder, keeps the rest for a resume', async () => {
    const file = await randomShare(dir, 1 * MiB);
    const evil = await lyingSeeder(file, (piece) => piece === 5 || piece === 9);
    const events: DownloadEvent[] = [];
    const o = await options(file, { seeders: [infoOf(evil)], onEvent: (e) => events.push(e) });
    const err = await download(o).done.then(
      () => undefined,
      (e: unknown) => e as { code: string; message: string; details?: Record<string, unknown> },
    );
    expect(err?.code).toBe('CORRUPT_PIECE');
    expect(err?.message).toMatch(/pieces 5, 9 failed verification/);
    expect(err?.message).toContain(`5, 9 from ${evil.peerId.slice(0, 12)}`);
    expect(err?.details).toMatchObject({ corruptPieces: [5, 9], missingPieces: 2 });
    // Every other piece was verified, and the seeder was not banned for two bad pieces.
    expect(events.filter((e) => e.type === 'pieceVerified')).toHaveLength(62);
    expect(events.some((e) => e.type === 'peerBanned')).toBe(false);
    await until('the seeder hears of both', () => evil.corruptReports.length === 2);
    expect([...evil.corruptReports].sort((a, b) => a - b)).toEqual([5, 9]);
    // Nothing at dest; the verified pieces wait in the part file.
    await expect(codeOf(access(o.dest))).resolves.toBe('ENOENT');
    await access(`${o.dest}.part`);
    // A later run with an honest seeder fetches only the two bad pieces.
    const honest = await seeders(file, 1);
    const result = await download({ ...o, seeders: honest, onEvent: () => {} }).done;
    expect(await sameBytes(o.dest, file)).toBe(true);
    expect(result.distribution.resumedPieces).toBe(62);
    expect(result.distribution.fetchedPieces).toBe(2);
  });

  it('strikes, not bans, a seeder for one bad piece when an honest seeder (a process) has it: byte-identical', async () => {
    const file = await randomShare(dir, 1 * MiB);
    // Its first piece asked is corrupt, the rest good; it scores higher, so it is asked first.
    const evil = await lyingSeeder(file, (_piece, nth) => nth === 0);
    const honest = await childSeeders(file, 1);
    const events: DownloadEvent[] = [];
    // The lying seeder alone first; the honest one is added at the strike. With both from the
    // start, an honest seeder ready first under load could take every piece: no strike to see.
    const o = await options(file, {
      seeders: [infoOf(evil)],
      onEvent: (e) => {
        events.push(e);
        if (e.type === 'peerStruck') handle.addSeeder({ ...honest[0]!.info, score: 0.1 });
      },
    });
    const handle = download(o);
    const result = await handle.done;
    expect(await sameBytes(o.dest, file)).toBe(true);
    const struck = events.filter((e) => e.type === 'peerStruck');
    expect(struck).toEqual([
      { type: 'peerStruck', peerId: evil.peerId, piece: expect.any(Number), strikes: 1 },
    ]);
    expect(events.some((e) => e.type === 'peerBanned')).toBe(false);
    const row = result.distribution.peers.find((p) => p.peerId === evil.peerId)!;
    expect(row.state).not.toBe('banned');
    expect(row.corruptPieces).toBe(1);
    expect(row.pieces).toBeGreaterThan(0);
    await until('the seeder hears of it', () => evil.corruptReports.length === 1);
    expect(evil.corruptReports).toEqual([(struck[0] as { piece: number }).piece]);
  });

  it('waits for an honest seeder’s bitfield before giving up a piece struck at another', async () => {
    // The lying seeder serves every piece, one of them corrupt, before the honest one has said
    // what it holds: until its bitfield comes it may hold the piece, and it does.
    const file = await randomShare(dir, 1 * MiB);
    const evil = await lyingSeeder(file, (_piece, nth) => nth === 0);
    const slow = await fakeSeeder(file, { bitfieldDelayMs: 1_000 });
    const events: DownloadEvent[] = [];
    const o = await options(file, {
      seeders: [infoOf(evil), infoOf(slow, 0.1)],
      onEvent: (e) => events.push(e),
    });
    await download(o).done;
    expect(await sameBytes(o.dest, file)).toBe(true);
    const struck = events.filter((e) => e.type === 'peerStruck') as { piece: number }[];
    expect(struck).toHaveLength(1);
    expect(events).toContainEqual({ type: 'pieceVerified', piece: struck[0]!.piece, peerId: slow.peerId });
  });

  it('does not give up a struck piece while a spreading seeder, holding every piece, has not shown it yet', async () => {
    // A spreading seeder shows a downloader a window of pieces; one shown to others first comes
    // later. The download waits for it rather than call the piece lost.
    const file = await randomShare(dir, 1 * MiB);
    const evil = await lyingSeeder(file, (piece) => piece === 7);
    const spreading = await fakeSeeder(file, {
      holdBack: { pieces: (piece) => piece === 7, afterMs: 1_000 },
    });
    const events: DownloadEvent[] = [];
    const o = await options(file, {
      seeders: [infoOf(evil), infoOf(spreading, 0.1)],
      onEvent: (e) => events.push(e),
    });
    await download(o).done;
    expect(await sameBytes(o.dest, file)).toBe(true);
    expect(events).toContainEqual({ type: 'peerStruck', peerId: evil.peerId, piece: 7, strikes: 1 });
    expect(events).toContainEqual({ type: 'pieceVerified', piece: 7, peerId: spreading.peerId });
  });

  it('moves work away from a stalling seeder', async () => {
    const file = await randomShare(dir, 1 * MiB);
    const stuck = await startFakeSeeder({
      data: file.data,
      manifest: file.manifest,
      behaviour: 'stall',
      afterBlocks: 2,
      identity: await createIdentity(),
    });
    closers.push(() => stuck.close());
    const good = await seeders(file, 1);
    good[0]!.score = 0.1;
    const events: DownloadEvent[] = [];
    const o = await options(file, {
      seeders: [
        { peerId: stuck.peerId, address: { host: '127.0.0.1', port: stuck.port }, score: 1 },
        ...good,
      ],
      // No endgame here: only stall detection can move the stuck pieces.
      scheduler: { stallTimeoutMs: 300, endgame: false, backoff: { baseMs: 20, maxMs: 100 } },
      onEvent: (e) => events.push(e),
    });
    const result = await download(o).done;
    expect(await sameBytes(o.dest, file)).toBe(true);
    expect(events.some((e) => e.type === 'peerStalled' && e.peerId === stuck.peerId)).toBe(true);
    const stuckReport = result.distribution.peers.find((p) => p.peerId === stuck.peerId)!;
    expect(stuckReport.pieces).toBeLessThanOrEqual(2);
    expect(stuckReport.stalls).toBeGreaterThan(0);
  });

  it('fails with NO_SEEDERS when every seeder is gone, and a later run resumes', async () => {
    const file = await randomShare(dir, 4 * MiB);
    const kids = await childSeeders(file, 2);
    let verified = 0;
    let killing: Promise<unknown> | undefined;
    const o = await options(file, {
      seeders: kids.map((k) => k.info),
      scheduler: SLOW,
      retry: FAST_RETRY,
      resumeIntervalMs: 10,
      onEvent: (e) => {
        if (e.type === 'pieceVerified' && ++verified === 40) killing = Promise.all(kids.map((k) => k.kill()));
      },
    });
    const err = await download(o).done.catch((e: unknown) => e);
    await killing;
    expect(err).toMatchObject({ code: 'NO_SEEDERS' });
    expect((err as Error).message).toMatch(/run the download again later/);
    expect(await exists(o.dest)).toBe(false);
    expect(await exists(`${o.dest}.part`)).toBe(true);

    const events: DownloadEvent[] = [];
    const again = await options(file, { seeders: await seeders(file, 1), onEvent: (e) => events.push(e) });
    const result = await download(again).done;
    expect(await sameBytes(o.dest, file)).toBe(true);
    const started = events.find((e) => e.type === 'started');
    expect(started).toMatchObject({ type: 'started' });
    const resumed = started?.type === 'started' ? started.resumedPieces : 0;
    expect(resumed).toBeGreaterThanOrEqual(30);
    expect(result.distribution.fetchedPieces).toBe(file.manifest.pieces.length - resumed);
  });

  it('is refused with a ticket for another file, an expired ticket or a forged ticket', async () => {
    const file = await randomShare(dir, 200 * KiB);
    const other = await randomShare(dir, 10 * KiB);
    const list = await seeders(file, 1);
    const forger = await testCluster();
    const cases = [
      {
        code: 'TICKET_WRONG_FILE',
        ticket: await setup.cluster.ticket({ peer: setup.me.peerId, file: other.fileId }),
      },
      {
        code: 'TICKET_EXPIRED',
        ticket: await setup.cluster.ticket({
          peer: setup.me.peerId,
          file: file.fileId,
          ttlSeconds: 60,
          nowSeconds: Math.floor(Date.now() / 1000) - 3600,
        }),
      },
      { code: 'TICKET_INVALID', ticket: await forger.ticket({ peer: setup.me.peerId, file: file.fileId }) },
      {
        code: 'TICKET_WRONG_PEER',
        ticket: await setup.cluster.ticket({ peer: 'e'.repeat(64), file: file.fileId }),
      },
    ];
    for (const c of cases) {
      const o = await options(file, { seeders: list, ticket: c.ticket, retry: FAST_RETRY });
      await expect(download(o).done).rejects.toMatchObject({ code: c.code });
      expect(await exists(o.dest)).toBe(false);
    }
  });

  it('refuses a seeder whose certificate is not the listed peer id', async () => {
    const file = await randomShare(dir, 100 * KiB);
    const [real] = await seeders(file, 1);
    const o = await options(file, {
      seeders: [{ ...real!, peerId: 'd'.repeat(64) }],
      retry: FAST_RETRY,
    });
    await expect(download(o).done).rejects.toMatchObject({ code: 'PEER_MISMATCH' });
  });

  it('serves its partial pieces to another downloader', async () => {
    const file = await randomShare(dir, 1 * MiB);
    const half = file.manifest.pieces.length / 2;
    // A fetches half the file from a seeder that then stalls, so A stays half done.
    const stuck = await startFakeSeeder({
      data: file.data,
      manifest: file.manifest,
      behaviour: 'stall',
      afterBlocks: half,
      identity: await createIdentity(),
    });
    closers.push(() => stuck.close());
    const a = await createIdentity();
    let aVerified = 0;
    let aHalf!: () => void;
    const aHalfDone = new Promise<void>((resolve) => {
      aHalf = resolve;
    });
    const aDownload = download({
      manifest: file.manifest,
      fileId: file.fileId,
      dest: join(dir, 'a.bin'),
      seeders: [{ peerId: stuck.peerId, address: { host: '127.0.0.1', port: stuck.port }, score: 1 }],
      ticket: await setup.cluster.ticket({ peer: a.peerId, file: file.fileId }),
      identity: a,
      scheduler: { stallTimeoutMs: 60_000 },
      onEvent: (e) => {
        if (e.type === 'pieceVerified' && ++aVerified === half) aHalf();
      },
    });
    closers.push(async () => {
      aDownload.abort();
      await aDownload.done.catch(() => undefined);
    });
    await aHalfDone;
    // A's piece server offers its download in progress.
    const aServer = await startPieceServer({
      identity: a,
      sources: (id) => (id === file.fileId ? aDownload.pieceSource : undefined),
      jwks: setup.cluster.jwks,
      host: '127.0.0.1',
    });
    closers.push(() => aServer.close());
    const full = await seeders(file, 1);
    full[0]!.score = 0.1;
    const o = await options(file, {
      dest: join(dir, 'b.bin'),
      seeders: [{ peerId: a.peerId, address: { host: '127.0.0.1', port: aServer.port }, score: 1 }, ...full],
    });
    const result = await download(o).done;
    expect(await sameBytes(o.dest, file)).toBe(true);
    const fromA = result.distribution.peers.find((p) => p.peerId === a.peerId)!;
    expect(fromA.pieces).toBeGreaterThan(0);
    expect(fromA.pieces).toBeLessThanOrEqual(half);
  });

  it('resumes after the downloader process is killed', async () => {
    const file = await randomShare(dir, 8 * MiB);
    const list = await seeders(file, 2);
    const identityDir = join(dir, 'dl-id');
    const { loadOrCreateIdentity } = await import('../../src/wire/identity.js');
    const dl = await loadOrCreateIdentity(identityDir);
    const spec = {
      manifest: file.manifest,
      fileId: file.fileId,
      dest: join(dir, 'out.bin'),
      seeders: list,
      ticket: await setup.cluster.ticket({ peer: dl.peerId, file: file.fileId }),
      identityDir,
      resumeIntervalMs: 10,
      scheduler: SLOW,
      crashAfterPieces: 50,
    };
    const child = await startChildPeer(dir, 'download', spec);
    closers.push(() => child.kill());
    // The downloader SIGKILLs itself after 50 pieces: a crash at a known point, whatever the load.
    await child.exited;
    expect(child.child.signalCode).toBe('SIGKILL');
    expect(await exists(spec.dest)).toBe(false);

    const events: DownloadEvent[] = [];
    const result = await download({
      manifest: file.manifest,
      fileId: file.fileId,
      dest: spec.dest,
      seeders: list,
      ticket: spec.ticket,
      identity: dl,
      onEvent: (e) => events.push(e),
    }).done;
    expect(await sameBytes(spec.dest, file)).toBe(true);
    const started = events.find((e) => e.type === 'started');
    const resumed = started?.type === 'started' ? started.resumedPieces : 0;
    // What reached the resume file before the kill (it is written every 10 ms).
    expect(resumed).toBeGreaterThan(0);
    expect(resumed).toBeLessThan(file.manifest.pieces.length);
    expect(result.distribution.resumedPieces).toBe(resumed);
    expect(result.distribution.fetchedPieces).toBe(file.manifest.pieces.length - resumed);
  });
});
