import { CoterieError } from './errors.js';

const RATE_UNITS: Record<string, number> = {
  'b/s': 1,
  'kib/s': 1024,
  'mib/s': 1024 ** 2,
  'gib/s': 1024 ** 3,
  'kb/s': 1000,
  'mb/s': 1000 ** 2,
  'gb/s': 1000 ** 3,
};

/** The largest rate accepted: 1 TiB/s, well past any link, well inside a safe integer. */
const MAX_RATE_BYTES_PER_SEC = 1024 ** 4;

/**
 * A bandwidth limit written by a person: "20MiB/s", "512 KiB/s", "1.5GiB/s",
 * or "0" for unlimited. Bytes per second as an integer, 0 meaning no limit.
 * Anything else ("-5", "fast", "20MiB" without /s) is USAGE, saying what to write.
 */
export function parseRate(text: string, what = 'rate'): number {
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-z/]*)\s*$/i.exec(text);
  const number = m === null ? Number.NaN : Number(m[1]);
  const unit = m === null ? undefined : m[2] === '' && number === 0 ? 1 : RATE_UNITS[m[2]!.toLowerCase()];
  if (m === null || unit === undefined) {
    throw new CoterieError(
      'USAGE',
      `invalid ${what} ${JSON.stringify(text).slice(0, 40)}: write a number and KiB/s, MiB/s or GiB/s (e.g. 20MiB/s), or 0 for unlimited`,
    );
  }
  const bytes = Math.round(number * unit);
  if (bytes > MAX_RATE_BYTES_PER_SEC) {
    throw new CoterieError('USAGE', `${what} ${JSON.stringify(text).slice(0, 40)} is past 1 TiB/s`);
  }
  if (number > 0 && bytes < 1) {
    throw new CoterieError(
      'USAGE',
      `${what} ${JSON.stringify(text).slice(0, 40)} is under 1 byte per second`,
    );
  }
  return bytes;
}

/** A rate for people: 0 is "unlimited", otherwise the largest binary unit that keeps it ≥ 1. */
export function formatRate(bytesPerSec: number): string {
  if (bytesPerSec <= 0 || !Number.isFinite(bytesPerSec)) return 'unlimited';
  const units: [string, number][] = [
    ['GiB/s', 1024 ** 3],
    ['MiB/s', 1024 ** 2],
    ['KiB/s', 1024],
  ];
  for (const [name, size] of units) {
    if (bytesPerSec >= size) return `${Number((bytesPerSec / size).toFixed(2))}${name}`;
  }
  return `${bytesPerSec}B/s`;
}
