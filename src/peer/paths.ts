import { statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CoterieError } from '../protocol/errors.js';

/** The file to share must exist and be a regular file (not a directory, device or socket). */
export function checkSourceFile(path: string): { size: number } {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch {
    throw new CoterieError('PATH_INVALID', `no such file: ${path}`);
  }
  if (!st.isFile()) throw new CoterieError('PATH_INVALID', `not a regular file: ${path}`);
  return { size: st.size };
}

/**
 * Where a download goes: `dest` itself, or `dest/<file_name>` when `dest` is
 * an existing directory. Its directory must exist; an existing file there is
 * refused (DESTINATION_EXISTS) rather than overwritten.
 */
export function resolveDestination(dest: string, fileName: string): string {
  let target = dest;
  try {
    if (statSync(dest).isDirectory()) target = join(dest, fileName);
  } catch {
    // not there yet: the usual case
  }
  const dir = dirname(target);
  let dirOk = false;
  try {
    dirOk = statSync(dir).isDirectory();
  } catch {
    dirOk = false;
  }
  if (!dirOk) throw new CoterieError('PATH_INVALID', `destination directory does not exist: ${dir}`);
  try {
    statSync(target);
    throw new CoterieError(
      'DESTINATION_EXISTS',
      `${target} exists: remove it or choose another destination than '${basename(target)}'`,
    );
  } catch (err) {
    if (err instanceof CoterieError) throw err;
  }
  return target;
}
