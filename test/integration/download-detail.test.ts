import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { formatDownloadDetail } from '../../src/cli/format-download-detail.js';
import { download } from '../../src/peer/files/download/index.js';
import { runningDetail } from '../../src/peer/files/download-detail.js';
import { transferOf } from '../../src/peer/files/transfer-view.js';
import type { DownloadRecord } from '../../src/peer/store/index.js';
import type { DownloadDetail } from '../../src/protocol/control.js';
import { createIdentity } from '../../src/wire/identity.js';
import { startFakeSeeder } from '../fixtures/fake-seeder.js';
import { randomShare, transferSetup } from '../fixtures/transfer-harness.js';
import { tempDir } from '../helpers/temp-dir.js';
import { until } from '../helpers/wait.js';

// "Why not 100 %" (issue 17) with misbehaving seeders over real TLS: a lying seeder (every
// block corrupt) is banned with its reason, a slow one (it stops answering after two blocks)
// shows as stalled, and the last four pieces, which only the liar claimed, are named as the
// missing pieces nobody online has: what show_downloads <download> answers while it runs.

const KiB = 1024;
const setup = transferSetup();
let dir: string;
beforeEach(() => {
  dir = tempDir('coterie-detail-').path;
});

describe('show_downloads <download> while it runs', () => {
  it('shows a banned peer with its reason, a stalled one, and the pieces nobody online has', async () => {
    const file = await randomShare(dir, 64 * 16 * KiB, 16 * KiB);
    const count = file.manifest.pieces.length;
    const partial = (i: number) => i < count - 4;
    const liar = await startFakeSeeder({
      data: file.data,
      manifest: file.manifest,
      behaviour: 'corrupt',
      identity: await createIdentity(),
    });
    const slow = await startFakeSeeder({
      data: file.data,
      manifest: file.manifest,
      behaviour: 'stall',
      afterBlocks: 2,
      has: partial,
      identity: await createIdentity(),
    });
    const honest = await startFakeSeeder({
      data: file.data,
      manifest: file.manifest,
      behaviour: 'ok',
      has: partial,
      identity: await createIdentity(),
    });
    setup.closers.push(
      () => liar.close(),
      () => slow.close(),
      () => honest.close(),
    );
    const at = (s: { peerId: string; port: number }, score: number) => ({
      peerId: s.peerId,
      address: { host: '127.0.0.1', port: s.port },
      score,
    });
    const o = await setup.options(file, join(dir, 'out.bin'), {
      seeders: [at(liar, 1), at(slow, 0.9), at(honest, 0.2)],
      scheduler: { stallTimeoutMs: 300, endgame: false, backoff: { baseMs: 5000, maxMs: 5000 } },
      noProgressTimeoutMs: 60_000,
    });
    const handle = download(o);
    const failed = handle.done.catch((e: unknown) => e);
    const rec = {
      id: 7,
      groupId: 'films',
      fileName: 'out.bin',
      fileId: file.fileId,
      dest: o.dest,
      size: file.data.length,
    } as DownloadRecord;
    const users = new Map([
      [liar.peerId, 'mallory'],
      [slow.peerId, 'sloth'],
      [honest.peerId, 'alice'],
    ]);
    const seen: DownloadDetail[] = [];
    const look = () => {
      const d = runningDetail(transferOf(rec, handle.snapshot(), users), handle.progress().unreachablePieces);
      seen.push(d);
      return d;
    };
    const stateOf = (d: DownloadDetail, peerId: string) => d.peers?.find((p) => p.peerId === peerId);
    await until('the liar banned', () => stateOf(look(), liar.peerId)?.state === 'banned', 20_000);
    await until(
      'the slow one stalled',
      () =>
        stateOf(look(), slow.peerId)?.state === 'stalled' ||
        seen.some((d) => stateOf(d, slow.peerId)?.state === 'stalled'),
      20_000,
    );
    await until(
      'only the liar-held pieces left',
      () => look().unreachable?.count === 4 && handle.progress().piecesVerified === count - 4,
      20_000,
    );
    const last = seen.at(-1)!;
    expect(stateOf(last, liar.peerId)).toMatchObject({
      userId: 'mallory',
      address: `127.0.0.1:${liar.port}`,
      piecesVerified: 0,
      banReason: expect.stringMatching(/wrong hash/),
    });
    expect(stateOf(last, honest.peerId)?.piecesVerified).toBeGreaterThan(0);
    expect(last.unreachable).toEqual({ count: 4, ranges: [[count - 4, count - 1]] });
    const text = formatDownloadDetail(last);
    expect(text).toMatch(/mallory .*banned: .*wrong hash/);
    expect(text).toContain(`4 missing pieces nobody online has: ${count - 4}-${count - 1}`);
    const stalledText = formatDownloadDetail(seen.find((d) => stateOf(d, slow.peerId)?.state === 'stalled')!);
    expect(stalledText).toMatch(/sloth .*stalled/);
    handle.abort('test over');
    expect(await failed).toMatchObject({ code: 'DOWNLOAD_FAILED' });
  }, 60_000);
});
