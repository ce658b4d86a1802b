/**
 * The relative paths of a folder share's files, as they arrive from the
 * network: checked before anything touches the disk, so that whatever a
 * lying peer or tracker sends, a download writes only below its destination
 * and the same tree can be written on Linux, macOS and Windows alike.
 *
 * A path is `/`-separated components, each 1–255 UTF-8 bytes, without `.`
 * or `..`, control characters (NUL among them), a backslash, a character
 * Windows forbids (`<>:"|?*`), a trailing dot or space, or a name Windows
 * reserves (CON, PRN, AUX, NUL, COM1–9, LPT1–9, with any extension). Across
 * a tree, no two paths may be equal ignoring case (one file system would
 * merge them), and no file may sit where another's directory is.
 */

export const TREE_PATH_MAX_BYTES = 4096;
export const TREE_COMPONENT_MAX_BYTES = 255;

// biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
const FORBIDDEN_CHAR = /[\u0000-\u001f\u007f\\<>:"|?*]/u;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const WINDOWS_RESERVED = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$/iu;

/** Why `path` cannot be a file of a tree, or undefined when it can. */
export function treePathProblem(path: unknown): string | undefined {
  if (typeof path !== 'string') return 'a path must be a string';
  if (path.length === 0) return 'a path is empty';
  // An ASCII path (most) has no surrogates, is its own normal form C and has a byte per
  // character: those three checks, about half the cost of a path, are for the others.
  const ascii = ASCII.test(path);
  if (!ascii && LONE_SURROGATE.test(path)) return 'a path is not valid Unicode';
  if ((ascii ? path.length : Buffer.byteLength(path)) > TREE_PATH_MAX_BYTES)
    return `a path is longer than ${TREE_PATH_MAX_BYTES} bytes`;
  if (path.startsWith('/')) return `${quote(path)} is absolute`;
  if (!ascii && path.normalize('NFC') !== path) return `${quote(path)} is not in Unicode normal form C`;
  for (const part of path.split('/')) {
    if (part === '') return `${quote(path)} has an empty component`;
    if (part === '.' || part === '..') return `${quote(path)} has a '${part}' component`;
    if (FORBIDDEN_CHAR.test(part))
      return `${quote(path)} has a control character, a backslash or one of <>:"|?*`;
    if ((ascii ? part.length : Buffer.byteLength(part)) > TREE_COMPONENT_MAX_BYTES)
      return `${quote(path)} has a component longer than ${TREE_COMPONENT_MAX_BYTES} bytes`;
    if (part.endsWith('.') || part.endsWith(' '))
      return `${quote(path)} has a component ending in a dot or space`;
    if (WINDOWS_RESERVED.test(part)) return `${quote(path)} uses a name Windows reserves ('${part}')`;
  }
  return undefined;
}

/**
 * Why these paths (each already valid alone) cannot be one tree, or
 * undefined: they must be in strictly increasing code-unit order (one
 * canonical order, so one tree has one id), no two equal ignoring case, and
 * no file where another file's directory is.
 */
export function treePathsProblem(paths: readonly string[]): string | undefined {
  const folded = new Set<string>();
  const dirs = new Set<string>();
  for (let i = 0; i < paths.length; i++) {
    const path = paths[i]!;
    if (i > 0 && !(paths[i - 1]! < path)) return `${quote(path)} is out of order or listed twice`;
    const key = foldCase(path);
    if (folded.has(key)) return `${quote(path)} differs from another path only in case`;
    folded.add(key);
    // Its directories, deepest first, until one already known: that one's own were added with
    // it, so a tree's paths cost one lookup each rather than a string per directory level.
    for (let cut = key.lastIndexOf('/'); cut > 0; cut = key.lastIndexOf('/', cut - 1)) {
      const dir = key.slice(0, cut);
      if (dirs.has(dir)) break;
      dirs.add(dir);
    }
  }
  for (const key of folded) if (dirs.has(key)) return `a file and a directory share the path ${quote(key)}`;
  return undefined;
}

/** The form two paths share when a case-insensitive file system would take them for one. */
export function foldCase(path: string): string {
  // ASCII is its own normal form, and folds by toLowerCase alone: most paths, and no ICU call.
  if (ASCII.test(path)) return path.toLowerCase();
  return path.normalize('NFC').toLowerCase().toUpperCase().toLowerCase();
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: every ASCII character, control ones included
const ASCII = /^[\u0000-\u007f]*$/;

function quote(path: string): string {
  return JSON.stringify(path.length > 120 ? `${path.slice(0, 120)}…` : path);
}
