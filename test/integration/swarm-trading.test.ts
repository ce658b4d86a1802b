import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CountingRelay, countingRelay } from '../../bench/lib/peer-swarm.js';
import { callDaemon } from '../../src/peer/control/client.js';
import type { FileSummary } from '../../src/protocol/api.js';
import type { ShowDownloadsResult } from '../../src/protocol/control.js';
import { choosePieceSize, pieceCount } from '../../src/protocol/manifest.js';
import { randomFile, until } from '../helpers/cli-harness.js';
import { cliSwarm } from '../helpers/cli-swarm.js';

// Issue 17's swarms that scale, with real `coterie` processes on loopback: alice seeds one file
// with her upload capped, and four members download it at once. Alone she would send it four
// times; the downloaders announce themselves as partial seeders and trade the pieces they
// verified, and alice shows each of them different pieces first (wire/spread.ts), so she sends
// it not much more than once. Her bytes are counted by a TCP relay she advertises (127.0.0.3).

const DOWNLOADERS = ['d1', 'd2', 'd3', 'd4'] as const;
type Name = 'alice' | (typeof DOWNLOADERS)[number];
const MiB = 1024 * 1024;
const FILE_BYTES = 24 * MiB;

interface Row {
  id: number;
  dest: string;
  state: string;
  error: string | null;
}

describe('downloaders trade pieces', { timeout: 180_000 }, () => {
  const swarm = cliSwarm<Name>('coterie-swarm-trade-');
  const { root, dir, ok } = swarm;
  const file = join(root, 'files', 'release.bin');
  let relay: CountingRelay | undefined;

  beforeAll(async () => {
    mkdirSync(join(root, 'dl'), { recursive: true });
    await randomFile(file, FILE_BYTES);
    await swarm.startTracker(['--heartbeat-interval-ms', '1000']);
    const alice = await swarm.startPeer('alice', [
      '--host',
      '127.0.0.2',
      '--advertise',
      '127.0.0.3',
      '--upload-limit',
      '6MiB/s',
    ]);
    relay = await countingRelay(
      '127.0.0.3',
      '127.0.0.2',
      Number(/serving on [\d.]+:(\d+)/.exec(alice.line)![1]),
    );
    for (const n of DOWNLOADERS) await swarm.startPeer(n);
    for (const n of ['alice', ...DOWNLOADERS] as const) {
      await swarm.typed(n, `${n}-password\n`, 'create_user', n, '-');
      await ok(n, 'login', n, `${n}-password`);
    }
    await ok('alice', 'create_group', 'films');
    for (const n of DOWNLOADERS) {
      await ok(n, 'join_group', 'films');
      await ok('alice', 'accept_request', 'films', n);
    }
    await ok('alice', 'upload_file', file, 'films');
  }, 150_000);

  afterAll(async () => {
    await relay?.close();
  });

  it('four downloaders of a capped seeder complete byte-identical, the seeder sending < 2× the file', async () => {
    const dest = (n: Name) => join(root, 'dl', `${n}.bin`);
    const listed = async (): Promise<FileSummary> =>
      ((await callDaemon(dir('alice'), 'list_files', ['films'])) as { files: FileSummary[] }).files[0]!;
    await Promise.all(DOWNLOADERS.map((n) => ok(n, 'download_file', 'films', 'release.bin', dest(n))));
    // While they run, list_files counts the downloaders apart: alice seeds, they serve pieces.
    // (At 6 MiB/s four copies take 4 s at the very least: the announcements come in the first.)
    let duringRun: FileSummary | undefined;
    await until('list_files shows partial seeders', async () => {
      duringRun = await listed();
      return (duringRun.partialSeeders ?? 0) >= 2;
    });
    expect(duringRun!.seeders).toBe(1);
    // At 6 MiB/s the seeder alone needs 4 s per copy: 16 s for four, twice that is a broken swarm.
    await until(
      'every download completed',
      async () => {
        for (const n of DOWNLOADERS) {
          const r = (await swarm.downloads<Row>(n)).find((d) => d.dest === dest(n));
          if (r?.state === 'failed') throw new Error(`${n}: ${r.error}`);
          if (r?.state !== 'completed') return false;
        }
        return true;
      },
      120_000,
    );
    const sent = relay!.toClients() / FILE_BYTES;
    // Done, each of them shares the file: whole seeders now, none partial.
    await until('list_files counts the finished downloaders as seeders', async () => {
      const f = await listed();
      return f.seeders === 1 + DOWNLOADERS.length && f.partialSeeders === 0;
    });
    const want = createHash('sha256').update(readFileSync(file)).digest('hex');
    for (const n of DOWNLOADERS) {
      expect(
        createHash('sha256')
          .update(readFileSync(dest(n)))
          .digest('hex'),
        n,
      ).toBe(want);
    }
    // Pieces each downloader fetched from the others (partial seeders it learned of).
    const fromPeers: Record<string, number> = {};
    for (const n of DOWNLOADERS) {
      const id = (await swarm.downloads<Row>(n)).find((d) => d.dest === dest(n))!.id;
      const { detail } = (await callDaemon(dir(n), 'show_downloads', [String(id)])) as ShowDownloadsResult;
      const peers = detail?.analysis?.peers ?? [];
      fromPeers[n] = peers.filter((p) => p.userId !== 'alice').reduce((a, p) => a + p.pieces, 0);
    }
    console.log(
      `swarm trading: seeder sent ${sent.toFixed(2)}× the file; pieces from other downloaders ${JSON.stringify(fromPeers)}`,
    );
    expect(sent).toBeLessThan(2);
    expect(sent).toBeGreaterThanOrEqual(1);
    // Together they took more than a whole file's pieces from each other (one of them may well
    // have taken all of its own from the seeder: that is the spreading at its best).
    const pieces = pieceCount(FILE_BYTES, choosePieceSize(FILE_BYTES));
    expect(Object.values(fromPeers).reduce((a, b) => a + b, 0)).toBeGreaterThan(pieces);
  });

  it('a downloader that finishes first goes on serving the connections it had, from its share', async () => {
    // d2 fetches at 1 MiB/s; d1 starts after it, in file order (so alice shows it every piece,
    // not a spread window of its own: it depends on nobody) at alice's full rate, and is done in
    // about two seconds while d2, connected to it as a partial seeder, still lacks most of the
    // file. d2's reads from d1 after that go to the share d1's finished file became. Before,
    // d1's closed partial file refused them all ('piece read failed' in its log), and d2 took
    // each refused piece as one d1 did not have.
    const second = join(root, 'files', 'second.bin');
    await randomFile(second, 8 * MiB);
    await ok('alice', 'upload_file', second, 'films');
    const dest = (n: Name) => join(root, 'dl', `${n}-second.bin`);
    const row = async (n: Name) => (await swarm.downloads<Row>(n)).find((d) => d.dest === dest(n));
    await ok('d2', 'download_file', 'films', 'second.bin', dest('d2'), '--limit', '1MiB/s');
    await ok('d1', 'download_file', 'films', 'second.bin', dest('d1'), '--sequential');
    await until('d1 completed', async () => (await row('d1'))?.state === 'completed', 60_000);
    expect((await row('d2'))?.state).toBe('active');
    await until(
      'd2 completed',
      async () => {
        const r = await row('d2');
        if (r?.state === 'failed') throw new Error(`d2: ${r.error}`);
        return r?.state === 'completed';
      },
      60_000,
    );
    const want = createHash('sha256').update(readFileSync(second)).digest('hex');
    expect(
      createHash('sha256')
        .update(readFileSync(dest('d2')))
        .digest('hex'),
    ).toBe(want);
    const refused = readFileSync(join(dir('d1'), 'peer.log'), 'utf8')
      .split('\n')
      .filter((l) => l.includes('piece read failed'));
    expect(refused).toEqual([]);
    const { detail } = (await callDaemon(dir('d2'), 'show_downloads', [
      String((await row('d2'))!.id),
    ])) as ShowDownloadsResult;
    const fromD1 = detail?.analysis?.peers.find((p) => p.userId === 'd1')?.pieces ?? 0;
    console.log(
      `handover: d2 fetched ${fromD1} of ${pieceCount(8 * MiB, choosePieceSize(8 * MiB))} pieces from d1`,
    );
    expect(fromD1).toBeGreaterThan(0);
  });
});
