/**
 * The import rules of src/ as a checker over an in-memory file set, so that
 * test/unit/import-directions.test.ts can run it on the real tree and on
 * planted bad imports alike. The rules themselves are written down in that
 * test's header and in docs/architecture.md ("Layers and their directions").
 */
import { posix } from 'node:path';

/** One import of a source file: its specifier as written and the line it starts on. */
export interface ImportRef {
  specifier: string;
  line: number;
}

export interface ImportViolation {
  /** The importing file, relative to src/. */
  file: string;
  line: number;
  specifier: string;
  /** The imported file, relative to src/. */
  target: string;
  rule: 'direction' | 'entry' | 'missing';
  message: string;
}

export interface ImportRules {
  /** For each top-level area, the other top-level areas it may import. */
  allowed: Readonly<Record<string, readonly string[]>>;
  /** Files, besides each area's index.ts, that other areas may import (relative to src/). */
  extraEntries: readonly string[];
  /** Areas every file of which is an entry: libraries of leaf modules, not components with an inside. */
  openAreas: readonly string[];
}

/** DESIGN.md's directions: peer → wire → core → protocol, tracker → core → protocol, peer/tracker/cli → os → protocol, cli on top. */
export const COTERIE_RULES: ImportRules = {
  allowed: {
    protocol: [],
    core: ['protocol'],
    os: ['protocol'],
    wire: ['core', 'protocol'],
    relay: ['core', 'protocol'],
    tracker: ['relay', 'core', 'os', 'protocol'],
    peer: ['wire', 'core', 'os', 'protocol'],
    cli: ['peer', 'tracker', 'relay', 'wire', 'core', 'os', 'protocol'],
  },
  // The light entry `coterie <command>` loads without the daemon's dependencies.
  extraEntries: ['peer/client.ts'],
  // Leaf modules with no state of their own: importing protocol/errors.ts
  // alone keeps TypeBox's schema catalogue (protocol/api.ts) out of the
  // light client's start, which an import through protocol/index.ts would not.
  openAreas: ['protocol', 'core', 'os'],
};

/**
 * The text with comments blanked (newlines kept, so line numbers hold) and
 * string and template literals left as they are, so that an import spelled
 * in a comment does not count and `'http://…'` is not taken for a comment.
 */
export function blankComments(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    const next = text[i + 1];
    if (c === '/' && next === '/') {
      while (i < text.length && text[i] !== '\n') {
        out += ' ';
        i++;
      }
    } else if (c === '/' && next === '*') {
      const end = text.indexOf('*/', i + 2);
      const stop = end === -1 ? text.length : end + 2;
      out += text.slice(i, stop).replace(/[^\n]/g, ' ');
      i = stop;
    } else if (c === "'" || c === '"' || c === '`') {
      let j = i + 1;
      while (j < text.length && text[j] !== c) j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

// Static imports and `export … from` (the clause never holds a quote or a
// semicolon, which keeps a match inside one statement), side-effect imports,
// and `import('…')`, both the dynamic call and the type-position form.
const IMPORT_PATTERNS = [
  /\b(?:import|export)\s[^'";]*?\bfrom\s*(['"])([^'"\n]+)\1/g,
  /\bimport\s*(['"])([^'"\n]+)\1/g,
  /\bimport\s*\(\s*(['"])([^'"\n]+)\1\s*\)/g,
];

/** Every import of one TypeScript source, in the order they appear. */
export function parseImports(text: string): ImportRef[] {
  const code = blankComments(text);
  const found: { index: number; specifier: string }[] = [];
  for (const pattern of IMPORT_PATTERNS) {
    for (const m of code.matchAll(pattern)) found.push({ index: m.index, specifier: m[2]! });
  }
  found.sort((a, b) => a.index - b.index);
  return found.map(({ index, specifier }) => ({
    specifier,
    line: code.slice(0, index).split('\n').length,
  }));
}

/**
 * The areas of a file set: every top-level directory of src/, and every
 * deeper directory with its own index.ts (peer/files/download, tracker/store…).
 */
export function areasOf(paths: Iterable<string>): Set<string> {
  const areas = new Set<string>();
  for (const p of paths) {
    const parts = p.split('/');
    if (parts.length > 1) areas.add(parts[0]!);
    if (parts.length > 2 && parts.at(-1) === 'index.ts') areas.add(parts.slice(0, -1).join('/'));
  }
  return areas;
}

const inside = (file: string, area: string): boolean => file.startsWith(`${area}/`);

/** The file a relative specifier names, relative to src/ (`./x.js` is `x.ts`); null when it leaves src/. */
function resolveTarget(from: string, specifier: string): string | null {
  const joined = posix.normalize(posix.join(posix.dirname(from), specifier));
  if (joined.startsWith('../') || joined === '..') return null;
  return joined.replace(/\.js$/, '.ts');
}

/**
 * Every import of `files` (path relative to src/ → source text) that breaks
 * `rules`: against the directions, into another area past its entry, or of a
 * file that is not there. Imports of packages and of files outside src/ are
 * not ours to check.
 */
export function checkImports(
  files: ReadonlyMap<string, string>,
  rules: ImportRules = COTERIE_RULES,
): ImportViolation[] {
  const areas = [...areasOf(files.keys())].sort((a, b) => a.length - b.length);
  const violations: ImportViolation[] = [];
  for (const [file, text] of files) {
    for (const { specifier, line } of parseImports(text)) {
      if (!specifier.startsWith('.')) continue;
      const target = resolveTarget(file, specifier);
      if (target === null) continue;
      const at = { file, line, specifier, target };
      if (!files.has(target)) {
        violations.push({
          ...at,
          rule: 'missing',
          message: `${file}:${line} imports ${target}, not in src/`,
        });
        continue;
      }
      const fromTop = file.split('/')[0]!;
      const toTop = target.split('/')[0]!;
      if (fromTop !== toTop && !(rules.allowed[fromTop] ?? []).includes(toTop)) {
        violations.push({
          ...at,
          rule: 'direction',
          message: `${file}:${line} imports ${target}: ${fromTop}/ may not import ${toTop}/ (it may import ${(rules.allowed[fromTop] ?? []).join(', ') || 'nothing of ours'})`,
        });
        continue;
      }
      // The outermost area that holds the target but not the importer is the
      // boundary crossed: the target must be one of that area's entries.
      const crossed = areas.find((a) => inside(target, a) && !inside(file, a));
      if (crossed === undefined || rules.openAreas.includes(crossed)) continue;
      const entries = [
        `${crossed}/index.ts`,
        ...rules.extraEntries.filter((e) => posix.dirname(e) === crossed),
      ];
      if (!entries.includes(target)) {
        violations.push({
          ...at,
          rule: 'entry',
          message: `${file}:${line} imports ${target} past ${crossed}/'s entry: import it from ${entries.join(' or ')}`,
        });
      }
    }
  }
  return violations;
}
