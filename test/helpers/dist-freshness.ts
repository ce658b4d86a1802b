/**
 * Whether dist/ was built from the src/ on disk. Spawned daemons and the
 * `coterie` bin run dist/, so a test run on a stale build would test old code
 * while reading new tests; test/global-setup.ts refuses to start one.
 */
import { readdirSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';

/**
 * The sources under `srcDir` whose compiled `.js` under `distDir` is missing or
 * older than they are (paths relative to `srcDir`, `/`-separated, sorted).
 */
export function staleOutputs(srcDir: string, distDir: string): string[] {
  const stale: string[] = [];
  for (const entry of readdirSync(srcDir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts') || entry.name.endsWith('.d.ts')) continue;
    const source = join(entry.parentPath, entry.name);
    const path = relative(srcDir, source).split(sep).join('/');
    const output = statSync(join(distDir, path.replace(/\.ts$/, '.js')), { throwIfNoEntry: false });
    if (output === undefined || output.mtimeMs < statSync(source).mtimeMs) stale.push(path);
  }
  return stale.sort();
}

/** Throws, naming the first stale sources, unless `root`'s dist/ is as new as its src/. */
export function assertDistFresh(root: string): void {
  const stale = staleOutputs(join(root, 'src'), join(root, 'dist'));
  if (stale.length === 0) return;
  const shown = stale.slice(0, 5).join(', ') + (stale.length > 5 ? `, and ${stale.length - 5} more` : '');
  throw new Error(
    `dist/ is older than src/ (${shown}): spawned daemons would run stale code. ` +
      'Run `npm run build` first (`npm test` does).',
  );
}
