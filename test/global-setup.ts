// Runs once before any test file: spawned daemons and bin/coterie.js run dist/,
// so a run against a build older than src/ stops here instead of testing old code.
import { join } from 'node:path';
import { assertDistFresh } from './helpers/dist-freshness.js';

export function setup(): void {
  assertDistFresh(join(import.meta.dirname, '..'));
}
