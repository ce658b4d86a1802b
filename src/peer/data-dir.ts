import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { CoterieError } from '../protocol/errors.js';

/**
 * The data directory of a peer: flag > COTERIE_DATA_DIR > a per-user default
 * (XDG on Linux, Application Support on macOS, %APPDATA% on Windows).
 */
export function resolveDataDir(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (flag !== undefined && flag !== '') return resolve(flag);
  const fromEnv = env.COTERIE_DATA_DIR;
  if (fromEnv !== undefined && fromEnv !== '') return resolve(fromEnv);
  return defaultDataDir(env);
}

export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  if (process.platform === 'darwin') return join(homedir(), 'Library', 'Application Support', 'coterie');
  if (process.platform === 'win32')
    return join(env.APPDATA ?? join(homedir(), 'AppData', 'Roaming'), 'coterie');
  const xdg = env.XDG_DATA_HOME;
  return join(xdg !== undefined && xdg !== '' ? xdg : join(homedir(), '.local', 'share'), 'coterie');
}

/** Creates the data directory (0700) if need be; PATH_INVALID when it cannot be one. */
export function ensureDataDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CoterieError(
      'PATH_INVALID',
      code === 'EEXIST' || code === 'ENOTDIR'
        ? `cannot use ${dir} as the data directory: it (or a parent) is a file`
        : `cannot create the data directory ${dir}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}
