// SHA-256 alone, for the transfer benchmark: what hashing a GiB costs on this machine, by
// Node's createHash (what the downloader's hashing worker runs) and by `openssl speed` (the
// library's own loop), in pieces of the download's size. Set beside the TLS-only ceiling,
// it tells how much of a side's CPU per GiB is cryptography and how much is ours. `openssl speed`
// times user CPU, Node's figure the wall clock: compare their CPU-s per GiB (equal here, 0.60-0.62
// on an EPYC, load 20), not their MiB/s on a busy machine. The addon's pairs (native/sha256-pair.c,
// what a download runs where the CPU has SHA-NI) beside them.
import { spawnSync } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { nativeSha256Pair } from '../../src/peer/files/download/native.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

export interface Sha256Alone {
  /** Node's createHash, one update per piece: MiB/s on the wall clock and CPU-s per GiB. */
  node: { mibps: number; cpuSecondsPerGiB: number };
  /** `openssl speed -evp sha256` at the same size (it times CPU): null where openssl is missing. */
  openssl: { mibps: number; cpuSecondsPerGiB: number } | null;
  /** The addon's two pieces a pass on the thread pool, CPU-s per GiB: null where it has no pairs. */
  pairCpuSecondsPerGiB: number | null;
}

/** 1 GiB in pairs of `piece`-sized views through the addon, one pair at a time: CPU-s per GiB. */
async function pairCpuSecondsPerGiB(piece: Buffer): Promise<number | null> {
  if (nativeSha256Pair === undefined) return null;
  const other = Buffer.from(piece);
  const pairs = Math.ceil(GiB / (2 * piece.length));
  await nativeSha256Pair(piece, other); // warm
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < pairs; i++) await nativeSha256Pair(piece, other);
  const cpu = process.cpuUsage(cpu0);
  return (cpu.user + cpu.system) / 1e6 / ((pairs * 2 * piece.length) / GiB);
}

/** Hashes 1 GiB in `pieceSize` pieces with Node, and asks openssl for its figure at that size. */
export async function sha256Alone(pieceSize: number): Promise<Sha256Alone> {
  const piece = randomFillSync(Buffer.allocUnsafe(pieceSize));
  const count = Math.ceil(GiB / pieceSize);
  createHash('sha256').update(piece).digest(); // warm
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < count; i++) createHash('sha256').update(piece).digest();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const gib = (count * pieceSize) / GiB;
  const node = {
    mibps: (gib * 1024) / seconds,
    cpuSecondsPerGiB: (cpu.user + cpu.system) / 1e6 / gib,
  };
  const r = spawnSync(
    'openssl',
    ['speed', '-mr', '-evp', 'sha256', '-bytes', String(pieceSize), '-seconds', '2'],
    {
      encoding: 'utf8',
      timeout: 30_000,
    },
  );
  // Machine-readable result: "+F:<n>:sha256:<bytes per second at each size>".
  const m = /^\+F:\d+:sha256:([\d.]+)/m.exec(r.stdout ?? '');
  const bytesPerSecond = m ? Number(m[1]) : Number.NaN;
  const openssl =
    bytesPerSecond > 0 ? { mibps: bytesPerSecond / MiB, cpuSecondsPerGiB: GiB / bytesPerSecond } : null;
  return { node, openssl, pairCpuSecondsPerGiB: await pairCpuSecondsPerGiB(piece) };
}
