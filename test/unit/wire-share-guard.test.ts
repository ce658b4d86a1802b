import { randomBytes } from 'node:crypto';
import { open, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createManifest } from '../../src/core/manifest.js';
import type { Manifest } from '../../src/protocol/manifest.js';
import { FilePieceSource } from '../../src/wire/piece-source.js';
import type { ReportVerdict } from '../../src/wire/share-guard.js';
import { tempDir } from '../helpers/temp-dir.js';
import { until } from '../helpers/wait.js';

const PIECE = 16 * 1024;
const MTIME_S = 1_700_000_000;
let dir: string;
let path: string;
let data: Buffer;
let manifest: Manifest;
const sources: FilePieceSource[] = [];

beforeEach(async () => {
  dir = tempDir('coterie-guard-').path;
  path = join(dir, 'movie.mkv');
  data = randomBytes(8 * PIECE);
  await writeFile(path, data);
  ({ manifest } = await createManifest(path, { pieceSize: PIECE }));
  // Whole seconds, so that a test can put the same mtime back exactly.
  await utimes(path, MTIME_S, MTIME_S);
});
afterEach(async () => {
  for (const s of sources.splice(0)) await s.close();
});

async function watched(
  options: Parameters<typeof FilePieceSource.open>[2] = { checkChanges: { statCacheMs: 0 } },
) {
  const s = await FilePieceSource.open(path, manifest, options);
  sources.push(s);
  const verdicts: ReportVerdict[] = [];
  const changed: string[] = [];
  s.guard?.on('report', (r) => verdicts.push(r.verdict));
  s.guard?.on('changed', (why) => changed.push(why));
  return { s, verdicts, changed };
}

/** Overwrites bytes in place, then puts the old mtime back: only re-hashing can tell. */
async function overwriteKeepingMtime(at: number, bytes: Buffer) {
  const fh = await open(path, 'r+');
  await fh.write(bytes, 0, bytes.length, at);
  await fh.close();
  await utimes(path, MTIME_S, MTIME_S);
  expect((await stat(path)).mtimeMs).toBe(MTIME_S * 1000);
}

describe('a shared file watched for changes (ShareGuard)', () => {
  it('refuses reads with NOT_SHARING once the size or mtime differs from when it was opened', async () => {
    const { s, changed } = await watched();
    expect((await s.read(0, 0, 10)).equals(data.subarray(0, 10))).toBe(true);
    await truncate(path, 7 * PIECE);
    await expect(s.read(0, 0, 10)).rejects.toMatchObject({
      code: 'NOT_SHARING',
      message: expect.stringMatching(/size went from 131072 to 114688/),
    });
    expect(changed).toHaveLength(1);

    const other = join(dir, 'other.bin');
    await writeFile(other, data);
    path = other;
    const b = await watched();
    const later = new Date(Date.now() + 5000);
    await utimes(other, later, later);
    await expect(b.s.read(1, 0, 10)).rejects.toMatchObject({ code: 'NOT_SHARING' });
    expect(b.changed[0]).toMatch(/modified at/);
  });

  it('stats at most once per statCacheMs, so a change shows within that time, not per block', async () => {
    const { s } = await watched({ checkChanges: { statCacheMs: 60_000 } });
    await s.read(0, 0, 10);
    await truncate(path, PIECE);
    // Within the cache time the old stat stands (the downloader's hash check guards these bytes).
    await expect(s.read(0, 0, 10)).resolves.toBeInstanceOf(Buffer);
  });

  it('re-hashes a piece reported corrupt: an intact file goes on being served', async () => {
    const { s, verdicts, changed } = await watched();
    s.reportCorrupt(3);
    await until('self-check', () => verdicts.length === 1);
    expect(verdicts).toEqual(['intact']);
    expect(changed).toEqual([]);
    expect((await s.read(3, 0, 10)).equals(data.subarray(3 * PIECE, 3 * PIECE + 10))).toBe(true);
    expect(s.guard!.stats).toMatchObject({ reports: 1, selfChecks: 1 });
  });

  it('finds a change that size and mtime hide once a report makes it re-hash the piece', async () => {
    const { s, verdicts, changed } = await watched();
    await overwriteKeepingMtime(2 * PIECE + 100, Buffer.from('tampered'));
    await expect(s.read(2, 0, 10)).resolves.toBeInstanceOf(Buffer);
    s.reportCorrupt(2);
    await until('self-check', () => verdicts.length === 1);
    expect(verdicts).toEqual(['changed']);
    expect(changed[0]).toMatch(/piece 2 no longer matches/);
    await expect(s.read(0, 0, 10)).rejects.toMatchObject({ code: 'NOT_SHARING' });
  });

  it('bounds self-checks: one at a time per file, then a small burst, then skipped', async () => {
    const { s, verdicts } = await watched({
      checkChanges: { statCacheMs: 0, selfCheckBurst: 2, selfCheckRefillMs: 3_600_000 },
    });
    // Ten reports at once: one check runs, the nine others find it busy.
    for (let i = 0; i < 10; i++) s.reportCorrupt(i % 8);
    await until('first check', () => verdicts.includes('intact'));
    expect(verdicts.filter((v) => v === 'skipped')).toHaveLength(9);
    s.reportCorrupt(1);
    await until('second check', () => verdicts.filter((v) => v === 'intact').length === 2);
    // The burst is spent: no more hashing for a long while, whatever a downloader says.
    for (let i = 0; i < 5; i++) s.reportCorrupt(i);
    expect(verdicts.slice(-5)).toEqual(['skipped', 'skipped', 'skipped', 'skipped', 'skipped']);
    expect(s.guard!.stats).toMatchObject({ reports: 16, selfChecks: 2, skipped: 14 });
  });

  it('is off unless asked for (a download’s part file changes by design)', async () => {
    const { s } = await watched({});
    expect(s.guard).toBeUndefined();
    await truncate(path, 7 * PIECE);
    await expect(s.read(0, 0, 10)).resolves.toBeInstanceOf(Buffer);
    s.reportCorrupt(0);
  });
});
