import { CoterieError } from './errors.js';

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1000 ** 4,
  tib: 1024 ** 4,
};

/** The largest size accepted: 2^53 − 1 bytes, where JSON numbers stop being exact. */
export const MAX_SIZE_BYTES = Number.MAX_SAFE_INTEGER;

/**
 * A size written by a person ("50GiB", "500 MiB", "1.5G", "4096"): bytes as
 * an integer. Binary units (KiB, MiB, GiB, TiB, and K/M/G/T alone) are powers
 * of 1024, decimal ones (KB, MB, GB, TB) powers of 1000. BAD_REQUEST names
 * what was wrong.
 */
export function parseByteSize(text: string): number {
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m === null ? undefined : UNITS[m[2]!.toLowerCase()];
  if (m === null || unit === undefined) {
    throw new CoterieError(
      'BAD_REQUEST',
      `invalid size ${JSON.stringify(text).slice(0, 40)}: write a number and a unit, e.g. 500MiB or 50GiB`,
    );
  }
  const bytes = Math.floor(Number(m[1]) * unit);
  if (!Number.isSafeInteger(bytes)) {
    throw new CoterieError('BAD_REQUEST', `size ${JSON.stringify(text).slice(0, 40)} is too large`);
  }
  return bytes;
}
