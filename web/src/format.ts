import { formatBytes } from '../../src/core/bytes.js';

export { formatBytes };

/** As the CLI prints rates: "1.5 MiB/s". */
export function formatRate(bytesPerSec: number): string {
  return `${formatBytes(Math.round(bytesPerSec))}/s`;
}

export function formatEta(remainingBytes: number, bytesPerSec: number): string {
  if (remainingBytes <= 0) return '—';
  if (bytesPerSec <= 0) return '∞';
  const s = Math.ceil(remainingBytes / bytesPerSec);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min ${s % 60} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function formatTime(ms: number): string {
  return new Date(ms).toLocaleString();
}

export function percent(done: number, total: number): number {
  return total === 0 ? 100 : Math.floor((done / total) * 1000) / 10;
}
