import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, ERROR_STATUS } from '../../src/protocol/errors.js';

// The README's error table and the closed list of codes must agree both ways.
describe('error codes', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const rows = new Map<string, number>();
  for (const m of readme.matchAll(/^\|\s*`([A-Z_]+)`\s*\|\s*(\d{3})\s*\|/gm)) rows.set(m[1]!, Number(m[2]));

  it('documents every code with its status', () => {
    for (const code of ERROR_CODES) expect(rows.get(code), code).toBe(ERROR_STATUS[code]);
  });

  it('documents no code that does not exist', () => {
    for (const code of rows.keys()) expect(ERROR_CODES).toContain(code);
  });
});
