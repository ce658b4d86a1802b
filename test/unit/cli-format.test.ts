import { describe, expect, it } from 'vitest';
import { countOf, formatBytes, formatRate } from '../../src/cli/format.js';

describe('cli format', () => {
  it('counts in the singular for one and the plural otherwise', () => {
    expect(countOf(0, 'peer')).toBe('0 peers');
    expect(countOf(1, 'peer')).toBe('1 peer');
    expect(countOf(3, 'peer')).toBe('3 peers');
  });

  it('prints sizes and rates in binary units', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(256 * 1024 ** 2)).toBe('256.0 MiB');
    expect(formatRate(1.5 * 1024 ** 3)).toBe('1.5 GiB/s');
  });
});
