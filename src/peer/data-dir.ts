import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { PRIVATE_DIR_MODE, type Tightened, tightenPrivateDir } from '../os/private-files.js';
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

/**
 * Creates the data directory (0700) if need be, and makes it and what it holds
 * private if other users could read or write them (the store holds the session
 * and the messages): returns what it narrowed, for a warning. PATH_INVALID when
 * it cannot be a directory, UNSAFE_PERMISSIONS when it cannot be made private.
 */
export function ensureDataDir(dir: string): Tightened[] {
  try {
    mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
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
  return tightenPrivateDir(dir);
}
