import { randomBytes } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import fc from 'fast-check';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Bitfield } from '../../src/core/bitfield.js';
import type { DownloadEvent, SeederInfo } from '../../src/peer/files/download/events.js';
import {
  createTlsDial,
  type Dial,
  type DownloadOptions,
  download,
} from '../../src/peer/files/download/index.js';
import { computeFileId, type Manifest } from '../../src/protocol/manifest.js';
import { createIdentity, type PeerIdentity } from '../../src/wire/identity.js';
import {
  type FakeBehaviour,
  type FakeSeeder,
  manifestFor,
  startFakeSeeder,
} from '../fixtures/fake-seeder.js';
import { tempDir } from '../helpers/temp-dir.js';
import { until } from '../helpers/wait.js';
import { watchdog } from '../helpers/watchdog.js';

// The engine over plain TCP to fake seeders: scheduling, verification, bans and
// retries without TLS. The TLS path with real piece servers is in test/integration.

const PIECE = 16 * 1024;

// Reads placed into the engine's buffers, as the TLS dial does (see wire/placed-reads.ts).
const plainDial: Dial = (s, signal, reads) =>
  new Promise<{ stream: Duplex; peerId: string }>((resolve, reject) => {
    const sock = connect({
      host: s.address.host,
      port: s.address.port,
      signal,
      ...(reads === undefined ? {} : { onread: reads.onread }),
    });
    // Plain TCP proves nobody: the seeder is taken to be the one listed.
    sock.once('connect', () => resolve({ stream: sock, peerId: s.peerId }));
    sock.once('error', reject);
  });

let me: PeerIdentity;
beforeAll(async () => {
  me = await createIdentity();
});
let dir: string;
let seeders: FakeSeeder[] = [];
beforeEach(() => {
  dir = tempDir('coterie-engine-').path;
});
afterEach(async () => {
  await Promise.all(seeders.map((s) => s.close()));
  seeders = [];
});

async function swarm(
  data: Buffer,
  behaviours: FakeBehaviour[],
  afterBlocks = 0,
  has?: (piece: number) => boolean,
  garbage?: Buffer,
) {
  const manifest = manifestFor(data, PIECE);
  for (const behaviour of behaviours) {
    seeders.push(
      await startFakeSeeder({
        data,
        manifest,
        behaviour,
        afterBlocks,
        ...(has ? { has } : {}),
        ...(garbage ? { garbage } : {}),
      }),
    );
  }
  return { manifest, infos: seeders.map(seederInfo) };
}

const seederInfo = (s: FakeSeeder): SeederInfo => ({
  peerId: s.peerId,
  address: { host: '127.0.0.1', port: s.port },
  score: 0.5,
});

/** A download of `manifest` from `seeders` over plain TCP, as `me` with ticket 't', into DIR/out.bin; `extra` overrides. */
function fetchFrom(manifest: Manifest, seeders: SeederInfo[], extra: Partial<DownloadOptions> = {}) {
  return download({
    manifest,
    fileId: computeFileId(manifest),
    dest: join(dir, 'out.bin'),
    seeders,
    ticket: 't',
    identity: me,
    dial: plainDial,
    ...extra,
  });
}

describe('download engine (plain TCP, fake seeders)', () => {
  it('downloads from three seeders and reports the piece distribution', async () => {
    const data = randomBytes(PIECE * 40 + 123);
    const { manifest, infos } = await swarm(data, ['ok', 'ok', 'ok']);
    const dest = join(dir, 'out.bin');
    const events: DownloadEvent[] = [];
    const h = fetchFrom(manifest, infos, {
      scheduler: { blockSizeBytes: 8 * 1024 },
      onEvent: (e) => events.push(e),
    });
    const result = await h.done;
    expect((await readFile(dest)).equals(data)).toBe(true);
    expect(result.distribution.fetchedPieces).toBe(41);
    expect(result.distribution.peers).toHaveLength(3);
    expect(events.filter((e) => e.type === 'pieceVerified')).toHaveLength(41);
    expect(events.at(-1)?.type).toBe('completed');
    // One connection per seeder, no duplicate dials.
    expect(seeders.map((s) => s.connections)).toEqual([1, 1, 1]);
    // After the end, the snapshot keeps what each peer served (their connections are closed) and a full map.
    const snap = h.snapshot();
    expect(snap.bitfield.equals(Bitfield.full(41).toBuffer())).toBe(true);
    expect(snap.peers.map((p) => p.address)).toEqual(infos.map((i) => i.address));
    expect(snap.peers.reduce((n, p) => n + p.piecesVerified, 0)).toBe(41);
  });

  it('bans a seeder at its third corrupt piece, tells it each one, and completes from the good one', async () => {
    const data = randomBytes(PIECE * 20);
    const { manifest, infos } = await swarm(data, ['corrupt', 'ok']);
    infos[0]!.score = 1;
    const dest = join(dir, 'out.bin');
    const events: DownloadEvent[] = [];
    const result = await fetchFrom(manifest, infos, { onEvent: (e) => events.push(e) }).done;
    expect((await readFile(dest)).equals(data)).toBe(true);
    const banned = events.filter((e) => e.type === 'peerBanned');
    expect(banned).toHaveLength(1);
    expect(banned[0]).toMatchObject({ peerId: infos[0]!.peerId });
    const evil = result.distribution.peers.find((p) => p.peerId === infos[0]!.peerId)!;
    expect(evil).toMatchObject({ state: 'banned', pieces: 0, corruptPieces: 3 });
    const struck = events.filter((e) => e.type === 'peerStruck');
    expect(struck.map((e) => e.strikes)).toEqual([1, 2, 3]);
    // The seeder was told of each piece that failed, before the connection closed.
    await until('reports arrive', () => seeders[0]!.corruptReports.length === 3);
    expect(seeders[0]!.corruptReports.sort()).toEqual(struck.map((e) => e.piece).sort());
  });

  it.each(['plain TCP', 'TLS'])(
    'survives a seeder that answers requests with garbage bytes (%s), and completes from the good one',
    async (transport) => {
      const tls = transport === 'TLS';
      const identities = tls ? await Promise.all([createIdentity(), createIdentity()]) : [];
      const frame = (length: number, type: number, rest: Uint8Array) => {
        const head = Buffer.alloc(5);
        head.writeUInt32BE(length, 0);
        head[4] = type;
        return Buffer.concat([head, rest]);
      };
      // Shapes of garbage, fuzzed: each must cost only that seeder's connection, never a hang
      // (a TLS socket handed an empty read buffer spins in native code: only a watchdog ends that).
      const stop = watchdog(50_000, `the garbage-seeder downloads over ${transport}`);
      await fc
        .assert(
          fc.asyncProperty(
            fc.oneof(
              fc.uint8Array({ minLength: 1, maxLength: 70_000 }),
              // A piece frame prefix promising more than arrives (or more than allowed), then junk.
              fc
                .tuple(fc.integer({ min: 10, max: 2 * 1024 * 1024 }), fc.uint8Array({ maxLength: 5000 }))
                .map(([length, rest]) => frame(length, 0x05, rest)),
              // A whole frame of an unknown type, refused only once complete, then more bytes.
              fc
                .tuple(fc.integer({ min: 20_000, max: 300_000 }), fc.uint8Array({ maxLength: 40_000 }))
                .map(([length, more]) =>
                  Buffer.concat([frame(length, 0x7f, Buffer.alloc(length - 1)), more]),
                ),
            ),
            fc.integer({ min: 0, max: 3 }),
            async (garbage, afterBlocks) => {
              const data = randomBytes(PIECE * 12 + 77);
              const manifest = manifestFor(data, PIECE);
              const started = await Promise.all(
                (['garbage', 'ok'] as const).map((behaviour, i) =>
                  startFakeSeeder({
                    data,
                    manifest,
                    behaviour,
                    afterBlocks,
                    garbage: Buffer.from(garbage),
                    ...(tls ? { identity: identities[i]! } : {}),
                  }),
                ),
              );
              seeders.push(...started);
              const dest = join(dir, `out-${randomBytes(4).toString('hex')}.bin`);
              await fetchFrom(manifest, started.map(seederInfo), {
                dest,
                dial: tls ? createTlsDial(me) : plainDial,
                scheduler: { stallTimeoutMs: 500 },
                retry: { maxAttempts: 2, backoff: { baseMs: 10, maxMs: 20 } },
              }).done;
              expect((await readFile(dest)).equals(data)).toBe(true);
              await Promise.all(seeders.map((s) => s.close()));
              seeders = [];
            },
          ),
          { numRuns: 15 },
        )
        .finally(stop);
    },
    60_000,
  );

  it('moves work away from a stalling seeder', async () => {
    const data = randomBytes(PIECE * 20);
    const { manifest, infos } = await swarm(data, ['stall', 'ok'], 3);
    infos[0]!.score = 1;
    const dest = join(dir, 'out.bin');
    const events: DownloadEvent[] = [];
    await fetchFrom(manifest, infos, {
      // Without the endgame the stuck pieces can only move by stall detection.
      scheduler: { stallTimeoutMs: 300, blockSizeBytes: 8 * 1024, endgame: false },
      onEvent: (e) => events.push(e),
    }).done;
    expect((await readFile(dest)).equals(data)).toBe(true);
    expect(events.some((e) => e.type === 'peerStalled' && e.peerId === infos[0]!.peerId)).toBe(true);
  });

  it('takes seeders added while it runs, and gives up when nobody has the missing pieces', async () => {
    const data = randomBytes(PIECE * 8);
    const { manifest, infos } = await swarm(data, ['ok'], 0, (i) => i < 4);
    const partialOnly = fetchFrom(manifest, infos, { dest: join(dir, 'a.bin'), noProgressTimeoutMs: 300 });
    await expect(partialOnly.done).rejects.toMatchObject({ code: 'NO_SEEDERS' });

    const full = await startFakeSeeder({ data, manifest, behaviour: 'ok' });
    seeders.push(full);
    const h = fetchFrom(manifest, infos, { dest: join(dir, 'b.bin'), noProgressTimeoutMs: 10_000 });
    h.addSeeder(seederInfo(full));
    const result = await h.done;
    expect((await readFile(join(dir, 'b.bin'))).equals(data)).toBe(true);
    expect(result.distribution.peers.find((p) => p.peerId === full.peerId)!.pieces).toBeGreaterThanOrEqual(4);
  });

  it('fetches a ticket per connection and stops on abort, keeping the partial file', async () => {
    const data = randomBytes(PIECE * 64);
    const { manifest, infos } = await swarm(data, ['stall'], 4);
    const dest = join(dir, 'out.bin');
    let tickets = 0;
    const controller = new AbortController();
    const h = fetchFrom(manifest, infos, {
      getTicket: async () => `t${++tickets}`,
      resumeIntervalMs: 0,
      signal: controller.signal,
      onEvent: (e) => {
        if (e.type === 'pieceVerified') setTimeout(() => controller.abort(), 20);
      },
    });
    await expect(h.done).rejects.toMatchObject({ code: 'DOWNLOAD_FAILED', message: 'download cancelled' });
    expect(tickets).toBe(1);
    expect(await stat(dest).catch(() => null)).toBeNull();
    expect((await stat(`${dest}.part`)).size).toBe(data.length);
    expect(h.pieceSource.bitfield.count()).toBeGreaterThan(0);
  });

  it('fails with NO_SEEDERS when every seeder is gone, leaving nothing at dest', async () => {
    const data = randomBytes(PIECE * 4);
    const manifest = manifestFor(data, PIECE);
    const dest = join(dir, 'out.bin');
    const dead: SeederInfo = { peerId: 'a'.repeat(64), address: { host: '127.0.0.1', port: 1 }, score: 1 };
    const h = fetchFrom(manifest, [dead], {
      retry: { maxAttempts: 3, backoff: { baseMs: 5, maxMs: 20, jitter: 0 } },
    });
    await expect(h.done).rejects.toMatchObject({ code: 'NO_SEEDERS' });
    expect(await stat(dest).catch(() => null)).toBeNull();
  });
});
