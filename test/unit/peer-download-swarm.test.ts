import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { hashPiece } from '../../src/core/piece-hash.js';
import { type DownloadEvent, type DownloadOptions, download } from '../../src/peer/files/download/index.js';
import { DOWNLOAD_DEFAULTS } from '../../src/peer/files/download/options.js';
import { CoterieError } from '../../src/protocol/errors.js';
import { computeFileId, type Manifest } from '../../src/protocol/manifest.js';
import { createIdentity, type Dial, type DialTarget, type PeerIdentity } from '../../src/wire/index.js';
import { manifestFor } from '../fixtures/fake-seeder.js';
import type { LinkShape } from '../helpers/duplex-pair.js';
import { FakeClock } from '../helpers/fake-clock.js';
import {
  type MemorySeederSpec,
  type MemorySwarm,
  startMemorySwarm,
  swarmDownloadOptions,
} from '../helpers/memory-swarm.js';
import { tempDir } from '../helpers/temp-dir.js';
import { until } from '../helpers/wait.js';

// Downloads through the real engine and real piece servers over in-memory links that are slow,
// throttled, lossy, stalling or dead: the scheduler's behaviour end to end, without sockets or
// TLS (those are in test/integration/transfer.test.ts).

const PIECE = 16 * 1024;
const PIECES = 64;

let me: PeerIdentity;
let dir: string;
let data: Buffer;
let manifest: Manifest;
let fileId: string;
let good: string;
let swarm: MemorySwarm | undefined;

beforeAll(async () => {
  me = await createIdentity();
});
beforeEach(async () => {
  dir = tempDir('coterie-swarm-').path;
  data = randomBytes(PIECE * PIECES);
  manifest = manifestFor(data, PIECE);
  fileId = computeFileId(manifest);
  good = join(dir, 'seeded.bin');
  await writeFile(good, data);
});
afterEach(async () => {
  await swarm?.close();
  swarm = undefined;
});

/** A throttled link with some latency that drops after a random 150–400 KiB (then the seeder is dialled again). */
const lossy = (): LinkShape => ({
  delayMs: 2,
  bytesPerSecond: 8 * 1024 * 1024,
  dropAfterBytes: (150 + Math.floor(Math.random() * 250)) * 1024,
});

async function run(seeders: MemorySeederSpec[], over: Partial<DownloadOptions> = {}) {
  swarm = await startMemorySwarm({ manifest, fileId, downloader: me, seeders });
  const events: DownloadEvent[] = [];
  const dest = join(dir, 'out.bin');
  const handle = download({
    manifest,
    fileId,
    dest,
    ...swarmDownloadOptions(swarm, me),
    retry: { maxAttempts: 8, backoff: { baseMs: 5, maxMs: 20, jitter: 0 } },
    scheduler: { stallTimeoutMs: 200 },
    onEvent: (e) => events.push(e),
    ...over,
  });
  return { handle, events, dest, swarm };
}

/** Every piece of the copy hashes to the manifest's, and the whole is the original. */
async function expectIdentical(dest: string) {
  const copy = await readFile(dest);
  for (let i = 0; i < PIECES; i++) {
    expect(hashPiece(copy.subarray(i * PIECE, (i + 1) * PIECE)), `piece ${i}`).toBe(manifest.pieces[i]);
  }
  expect(copy.equals(data)).toBe(true);
}

describe('downloads over in-memory links to real piece servers', () => {
  it('completes 64 pieces over three throttled, lossy links and one that dies', async () => {
    const { handle, events, dest, swarm } = await run([
      { path: good, link: lossy },
      { path: good, link: lossy },
      { path: good, link: lossy },
      // Dies after 100 KiB, and is never reachable again.
      { path: good, link: (nth) => (nth === 0 ? { ...lossy(), dropAfterBytes: 100 * 1024 } : undefined) },
    ]);
    const result = await handle.done;
    await expectIdentical(dest);
    const verified = events.filter((e) => e.type === 'pieceVerified').map((e) => e.piece);
    expect(new Set(verified).size).toBe(PIECES);
    expect(verified).toHaveLength(PIECES);
    // The links did drop: the lossy seeders were dialled again, the dead one tried and given up.
    expect(events.some((e) => e.type === 'peerDisconnected')).toBe(true);
    expect(swarm.seeders[3]!.dials).toBeGreaterThan(1);
    expect(result.distribution.fetchedPieces).toBe(PIECES);
  }, 10_000);

  it('moves the work of a seeder whose link stalls to the others', async () => {
    const { handle, events, dest, swarm } = await run(
      [
        // Its hello and bitfield arrive, then 40 KiB of blocks, then nothing: the link stays up.
        { path: good, link: () => ({ delayMs: 1, stallAfterBytes: 40 * 1024 }) },
        { path: good, link: () => ({ delayMs: 1, bytesPerSecond: 4 * 1024 * 1024 }) },
      ],
      { scheduler: { stallTimeoutMs: 150, endgame: false } },
    );
    swarm.seeders[0]!.info.score = 1; // asked first
    const result = await handle.done;
    await expectIdentical(dest);
    const staller = swarm.seeders[0]!.info.peerId;
    expect(events.some((e) => e.type === 'peerStalled' && e.peerId === staller)).toBe(true);
    const other = result.distribution.peers.find((p) => p.peerId !== staller)!;
    expect(other.pieces).toBeGreaterThan(PIECES / 2);
  }, 10_000);

  it('leaves a relayed link that went silent on its keepalive, and completes over another path', async () => {
    // The one seeder's first link is "relayed" and, after its hello and 40 KiB of blocks, drops
    // everything (a router that lost its mapping and drops silently); the next dial is direct.
    let dials = 0;
    const { handle, events, dest, swarm } = await run(
      [
        {
          path: good,
          link: () => (dials === 1 ? { delayMs: 1, stallAfterBytes: 40 * 1024 } : { delayMs: 1 }),
        },
      ],
      {
        dial: async (target, signal, reads) => {
          dials++;
          const dialed = await swarm!.dial(target, signal, reads);
          return dials === 1 ? { ...dialed, relayed: true } : dialed;
        },
        // Neither the stall timer nor the wire's idle timeout would notice within the test.
        noProgressTimeoutMs: 3_600_000,
        scheduler: { stallTimeoutMs: 3_600_000 },
        upgrade: { firstMs: 3_600_000 },
      },
    );
    await handle.done;
    await expectIdentical(dest);
    const lost = events.filter((e) => e.type === 'peerDisconnected');
    expect(lost).toHaveLength(1);
    expect(lost[0]).toMatchObject({ reason: expect.stringMatching(/path silent: 2 keepalive pings/) });
    expect(dials).toBe(2);
  }, 20_000);

  it('strikes and bans a seeder serving a corrupted copy, telling it each time, and completes from the others', async () => {
    const bad = Buffer.from(data);
    for (let i = 0; i < PIECES; i += 2) bad[i * PIECE + 7]! ^= 0xff; // every even piece is wrong
    const corrupt = join(dir, 'corrupt.bin');
    await writeFile(corrupt, bad);
    const link = () => ({ delayMs: 1, bytesPerSecond: 8 * 1024 * 1024 });
    const { handle, events, dest, swarm } = await run([
      { path: corrupt, link },
      { path: good, link },
      { path: good, link },
    ]);
    swarm.seeders[0]!.info.score = 1;
    const result = await handle.done;
    await expectIdentical(dest);
    const liar = swarm.seeders[0]!.info.peerId;
    const struck = events.filter((e) => e.type === 'peerStruck' && e.peerId === liar);
    expect(struck.map((e) => (e.type === 'peerStruck' ? e.strikes : 0))).toEqual([1, 2, 3]);
    expect(events.filter((e) => e.type === 'peerBanned' && e.peerId === liar)).toHaveLength(1);
    expect(result.distribution.peers.find((p) => p.peerId === liar)).toMatchObject({
      state: 'banned',
      corruptPieces: 3,
    });
    // Each strike reached the seeder as a corrupt report, over the real wire.
    await until('the reports arrive', () => swarm.seeders[0]!.server.stats().corruptReports === 3);
  }, 10_000);

  it('upgrades a relayed seeder to a direct link mid-transfer, fetching nothing twice', async () => {
    // The first connection is "relayed" and slow (2 s for the file); the first direct attempt
    // fails as a punch may, the second gets a fast link.
    let directTries = 0;
    let seen: DownloadEvent[] = [];
    const dial: Dial = async (target, signal, reads) => {
      if (target.directOnly !== true) return { ...(await swarm!.dial(target, signal, reads)), relayed: true };
      if (directTries++ === 0) throw new CoterieError('UNAVAILABLE', 'the punch timed out');
      // Some pieces over the relay first, however slow the machine.
      await until('a piece verified over the relay', () => seen.some((e) => e.type === 'pieceVerified'));
      return swarm!.dial(target, signal, reads);
    };
    const { handle, events, dest } = await run(
      [{ path: good, link: (nth) => (nth === 0 ? { delayMs: 5, bytesPerSecond: 512 * 1024 } : {}) }],
      // Generous stall and drain deadlines: on a loaded machine a 200 ms stall or 100 ms of silence
      // on the slow relayed link would legitimately send its outstanding blocks again on the direct
      // one, and this test counts the seeder's bytes exactly.
      {
        dial,
        scheduler: { stallTimeoutMs: 10_000 },
        upgrade: { attempts: 3, firstMs: 50, intervalMs: 200, drainIdleMs: 10_000 },
      },
    );
    seen = events;
    await handle.done;
    await expectIdentical(dest);
    const types = events.map((e) => e.type);
    expect(types.filter((t) => t === 'peerUpgradeFailed')).toHaveLength(1);
    expect(types.filter((t) => t === 'peerUpgraded')).toHaveLength(1);
    expect(types.filter((t) => t === 'peerConnected')).toHaveLength(1);
    // Pieces came over both links, and the seeder sent every byte of the file exactly once.
    const upgradedAt = types.indexOf('peerUpgraded');
    expect(types.slice(0, upgradedAt)).toContain('pieceVerified');
    expect(types.slice(upgradedAt)).toContain('pieceVerified');
    const stats = swarm!.seeders[0]!.server.stats();
    expect(stats.bytesSent).toBe(PIECE * PIECES);
    expect(swarm!.seeders[0]!.dials).toBe(2);
  });

  it('tries a relayed seeder directly soon, backs off to the interval, and at once when addresses change', async () => {
    // Every direct attempt fails (UDP between the homes still blocked).
    const { clock, handle, tries, expectTryAt, expectTryNow } = await relayedOnFakeClock();
    const { firstMs, intervalMs } = DOWNLOAD_DEFAULTS.upgrade;
    expect(firstMs).toBeLessThanOrEqual(2_000);
    // The first a moment after the relayed link started, not a whole interval later; then the
    // waits double up to the interval.
    let at = firstMs;
    for (const wait of [0, 2 * firstMs, 4 * firstMs, intervalMs, intervalMs]) {
      at += wait;
      await expectTryAt(at);
    }
    // The tracker lists the seeder again with the same addresses: nothing to try.
    const info = swarm!.seeders[0]!.info;
    handle.addSeeder({ ...info });
    // A new UDP endpoint of the seeder: the next attempt at once, the waits going on after it.
    await expectTryNow(() => handle.addSeeder({ ...info, udp: { host: '198.18.9.9', port: 40_000 } }));
    at += intervalMs;
    await expectTryAt(at);
    // Our own public UDP endpoint learned or moved (the daemon says so): an attempt at once too.
    await expectTryNow(() => handle.retryDirect());
    // Brought forward or not, attempts stop at the budget (10 by default): a changing endpoint
    // cannot make them endless.
    at += intervalMs;
    await expectTryAt(at);
    await expectTryNow(() => handle.retryDirect());
    handle.retryDirect();
    clock.advance(10 * intervalMs);
    await new Promise((r) => setImmediate(r));
    expect(tries).toHaveLength(DOWNLOAD_DEFAULTS.upgrade.attempts);
    handle.abort('the test is over');
    await handle.done.catch(() => {});
  });

  it("tries a relayed seeder's new addresses at once when the tracker says it moved (peer_moved)", async () => {
    const { clock, handle, tries, targets, events, expectTryAt, expectTryNow } = await relayedOnFakeClock();
    const { firstMs } = DOWNLOAD_DEFAULTS.upgrade;
    await expectTryAt(firstMs);
    const info = swarm!.seeders[0]!.info;
    // Not a seeder of this download: nothing to do.
    expect(handle.seederMoved('f'.repeat(64), { address: { host: '198.18.7.7', port: 7000 } })).toBe(false);
    // Where it already is: no news, no attempt.
    expect(handle.seederMoved(info.peerId, { address: info.address })).toBe(true);
    // Its router mapped a port for it: the next attempt now, at the mapped address, not at the
    // schedule's next step (2 * firstMs later) nor at a listing that may never come.
    const mapped = { host: '198.18.7.7', port: 7000 };
    await expectTryNow(() => handle.seederMoved(info.peerId, { address: mapped }));
    expect(targets.at(-1)).toMatchObject({ peerId: info.peerId, address: mapped, directOnly: true });
    expect(tries).toEqual([firstMs, clock.now()]);
    expect(events.filter((e) => e.type === 'peerMoved')).toHaveLength(1);
    handle.abort('the test is over');
    await handle.done.catch(() => {});
  });

  it('follows an attempt that was dialling when the seeder moved with one at its new address at once', async () => {
    let open!: () => void;
    const gate = new Promise<void>((r) => {
      open = r;
    });
    const t = await relayedOnFakeClock(() => gate);
    const { firstMs } = DOWNLOAD_DEFAULTS.upgrade;
    t.clock.advance(firstMs);
    await until('the first attempt dialling', () => t.tries.length === 1);
    const info = swarm!.seeders[0]!.info;
    const moved = { host: '198.18.7.8', port: 7001 };
    expect(t.handle.seederMoved(info.peerId, { address: moved })).toBe(true);
    await new Promise((r) => setImmediate(r));
    expect(t.tries).toHaveLength(1);
    // The attempt to the old address fails: the next goes at once, to the new one, not 2 * firstMs later.
    open();
    await until('the attempt after it made and failed', () => t.failed() === 2);
    expect(t.tries).toEqual([firstMs, firstMs]);
    expect(t.targets.map((x) => x.address)).toEqual([info.address, moved]);
    t.handle.abort('the test is over');
    await t.handle.done.catch(() => {});
  });

  it('gives a relayed connection made again while an attempt dialled attempts of its own', async () => {
    let open!: () => void;
    const gate = new Promise<void>((r) => {
      open = r;
    });
    const t = await relayedOnFakeClock(() => gate);
    const { firstMs } = DOWNLOAD_DEFAULTS.upgrade;
    t.clock.advance(firstMs);
    await until('the first attempt dialling', () => t.tries.length === 1);
    // The relayed connection drops while that attempt dials, and is made again (run()'s retry
    // waits 5 ms, on the fake clock from the moment the loss is seen).
    t.relayed[0]!.destroy();
    await until('the relayed link lost', () => t.events.some((e) => e.type === 'peerDisconnected'));
    t.clock.advance(5);
    const connected = () => t.events.filter((e) => e.type === 'peerConnected').length;
    await until('the relayed link made again', () => connected() === 2);
    const againAt = t.clock.now();
    // The old attempt fails: the new connection's schedule starts then, from its first wait.
    open();
    await until('the old attempt failed', () => t.failed() === 1);
    await t.expectTryAt(againAt + firstMs);
    t.handle.abort('the test is over');
    await t.handle.done.catch(() => {});
  });
});

/**
 * A download whose one seeder is reached through a "relay" only (a link slow enough that the file
 * is still downloading when the test ends), on a fake clock that stands still until the test moves
 * it: each direct attempt is recorded at its time and fails once `punch` settles.
 */
async function relayedOnFakeClock(punch: () => Promise<void> = async () => {}) {
  const clock = new FakeClock();
  const tries: number[] = [];
  const targets: DialTarget[] = [];
  const relayed: Duplex[] = [];
  const dial: Dial = async (target, signal, reads) => {
    if (target.directOnly !== true) {
      const dialed = await swarm!.dial(target, signal, reads);
      relayed.push(dialed.stream);
      return { ...dialed, relayed: true };
    }
    tries.push(clock.now());
    targets.push(target);
    await punch();
    throw new CoterieError('UNAVAILABLE', 'the punch timed out');
  };
  const { handle, events } = await run(
    [{ path: good, link: () => ({ delayMs: 5, bytesPerSecond: 16 * 1024 }) }],
    {
      dial,
      clock,
      noProgressTimeoutMs: 3_600_000,
      scheduler: { stallTimeoutMs: 3_600_000 },
      upgrade: { jitter: 0 },
      // Hours pass on the fake clock while the slow link's blocks come in real time: no pings.
      pathKeepalive: false,
    },
  );
  const failed = () => events.filter((e) => e.type === 'peerUpgradeFailed').length;
  /** Moves the clock to just before `at` (no attempt yet), then to it: the next attempt is made and fails. */
  const expectTryAt = async (at: number) => {
    clock.advance(at - 1 - clock.now());
    await new Promise((r) => setImmediate(r));
    expect(tries, `no attempt before ${at} ms`).toHaveLength(failed());
    clock.advance(1);
    const n = tries.length + 1;
    await until(`upgrade attempt ${n} made and failed`, () => failed() === n);
    expect(tries.at(-1)).toBe(at);
  };
  /** `change` brings an attempt at once: made (and failed) with the clock where it stands. */
  const expectTryNow = async (change: () => void) => {
    const n = tries.length + 1;
    change();
    await until(`upgrade attempt ${n}, brought forward, made and failed`, () => failed() === n);
    expect(tries).toHaveLength(n);
    expect(tries.at(-1)).toBe(clock.now());
  };
  await until('the relayed link ready', () => events.some((e) => e.type === 'peerConnected'));
  return { clock, tries, targets, relayed, handle, events, failed, expectTryAt, expectTryNow };
}
