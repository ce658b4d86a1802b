// SHA-256 alone, for the transfer benchmark: what hashing a GiB costs on this machine, by
// Node's createHash (what the downloader's hashing worker runs) and by `openssl speed` (the
// library's own loop), in pieces of the download's size. Set beside the TLS-only ceiling,
// it tells how much of a side's CPU per GiB is cryptography and how much is ours.
import { spawnSync } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

export interface Sha256Alone {
  /** Node's createHash, one update per piece: MiB/s on the wall clock and CPU-s per GiB. */
  node: { mibps: number; cpuSecondsPerGiB: number };
  /** `openssl speed -evp sha256` at the same size (it times CPU): null where openssl is missing. */
  openssl: { mibps: number; cpuSecondsPerGiB: number } | null;
}

/** Hashes 1 GiB in `pieceSize` pieces with Node, and asks openssl for its figure at that size. */
export function sha256Alone(pieceSize: number): Sha256Alone {
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
  return { node, openssl };
}
