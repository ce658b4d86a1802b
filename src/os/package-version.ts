import { readFileSync } from 'node:fs';

/**
 * The version of this package, read from its package.json: `coterie --version` and the
 * tracker's /healthz report it, so the two cannot disagree with what npm installed.
 * The path is the same from src/os (tests) and dist/os (the binary): two levels up.
 */
export const PACKAGE_VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
