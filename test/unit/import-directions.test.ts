/**
 * Every import in src/ follows the layers (docs/architecture.md, "Layers and their directions").
 *
 * The rules, checked by test/helpers/import-rules.ts over static imports, `export … from`,
 * side-effect imports and `import('…')` (dynamic or in a type position) of relative paths:
 *
 * - Directions between the top-level areas of src/: protocol imports nothing of ours; core and
 *   os import protocol; wire imports core and protocol; tracker imports core, os and protocol
 *   (never peer nor wire); peer imports wire, core, os and protocol (never tracker); cli, on
 *   top, may import any of them.
 * - Areas: each top-level directory of src/, and each deeper directory with its own index.ts
 *   (peer/control, peer/files, peer/files/download, peer/messages, peer/store, tracker/store,
 *   tracker/events…). A file that imports into an area it is
 *   not part of imports that area's index.ts, and nothing past it; for peer/ also client.ts,
 *   the light entry `coterie <command>` loads. Where areas nest, the outermost one crossed
 *   decides: cli reaches the download engine through peer/index.ts, tracker/http reaches the
 *   store through tracker/store/index.ts, peer/files the store through peer/store/index.ts, and
 *   peer/files/download/ may use peer/'s own files.
 * - protocol/, core/ and os/ are open: each of their files is a leaf module with no state of
 *   its own and may be imported alone (protocol/errors.ts without TypeBox's schema catalogue
 *   is what keeps `coterie <command>` fast to start, see cli-startup.test.ts).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { areasOf, checkImports, parseImports } from '../helpers/import-rules.js';

const SRC = join(import.meta.dirname, '..', '..', 'src');

function readSources(): Map<string, string> {
  const files = new Map<string, string>();
  for (const entry of readdirSync(SRC, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const path = join(entry.parentPath, entry.name);
    files.set(relative(SRC, path).split(sep).join('/'), readFileSync(path, 'utf8'));
  }
  return files;
}

describe('src/ imports', () => {
  it('follow the directions and enter other areas through their index.ts', () => {
    const files = readSources();
    expect(files.size).toBeGreaterThan(50);
    expect(checkImports(files).map((v) => v.message)).toEqual([]);
  });

  it('are all seen by the parser: it finds every relative import TypeScript’s own scanner finds', () => {
    const relativeOnly = (specifiers: string[]) => specifiers.filter((s) => s.startsWith('.')).sort();
    for (const [path, text] of readSources()) {
      const byTypeScript = ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName);
      const ours = parseImports(text).map((r) => r.specifier);
      expect(relativeOnly(ours), path).toEqual(relativeOnly(byTypeScript));
    }
  });
});

// The checker on planted file sets: each rule fails when broken.
const tree = (extra: Record<string, string>): Map<string, string> =>
  new Map(
    Object.entries({
      'protocol/errors.ts': 'export class CoterieError extends Error {}\n',
      'core/bitfield.ts': "import { CoterieError } from '../protocol/errors.js';\n",
      'wire/index.ts': "export * from './frames.js';\n",
      'wire/frames.ts': "import { Bitfield } from '../core/bitfield.js';\n",
      'peer/index.ts': "export * from './client.js';\n",
      'peer/client.ts': "import type { Frame } from '../wire/index.js';\n",
      'peer/notices.ts': 'export type Notice = string;\n',
      'peer/download/index.ts': "export * from './engine.js';\n",
      'peer/download/engine.ts': "import type { Notice } from '../notices.js';\n",
      'tracker/index.ts': "export * from './store/index.js';\n",
      'tracker/store/index.ts': "export * from './store.js';\n",
      'tracker/store/store.ts': "import { CoterieError } from '../../protocol/errors.js';\n",
      'tracker/http/app.ts': "import { openStore } from '../store/index.js';\n",
      'cli/main.ts': "const { startPeer } = await import('../peer/index.js');\n",
      ...extra,
    }),
  );

const rulesBroken = (extra: Record<string, string>) =>
  checkImports(tree(extra)).map((v) => `${v.rule} ${v.file}:${v.line} -> ${v.target}`);

describe('the import checker', () => {
  it('passes a tree that follows the rules', () => {
    expect(rulesBroken({})).toEqual([]);
  });

  it('finds the areas: top-level directories and deeper ones with an index.ts', () => {
    expect([...areasOf(tree({}).keys())].sort()).toEqual([
      'cli',
      'core',
      'peer',
      'peer/download',
      'protocol',
      'tracker',
      'tracker/store',
      'wire',
    ]);
  });

  it('fails on an import against the directions', () => {
    expect(
      rulesBroken({
        'tracker/http/seed.ts': "import { Frame } from '../../wire/index.js';\n",
        'peer/seeding.ts': "export { openStore } from '../tracker/index.js';\n",
        'core/scheduler.ts': "import '../peer/index.js';\n",
        'protocol/api.ts': "\n\ntype F = import('../core/bitfield.js').Bitfield;\n",
      }),
    ).toEqual([
      'direction tracker/http/seed.ts:1 -> wire/index.ts',
      'direction peer/seeding.ts:1 -> tracker/index.ts',
      'direction core/scheduler.ts:1 -> peer/index.ts',
      'direction protocol/api.ts:3 -> core/bitfield.ts',
    ]);
  });

  it('fails on an import past another area’s index.ts, at the outermost area crossed', () => {
    expect(
      rulesBroken({
        'cli/format.ts': "import { download } from '../peer/download/engine.js';\n",
        'cli/shell.ts': "import { download } from '../peer/download/index.js';\n",
        'peer/daemon.ts': "import {\n  x,\n} from './download/engine.js';\n",
        'tracker/http/routes.ts': "import type { Store } from '../store/store.js';\n",
        'peer/seeding.ts': "const m = await import('../wire/frames.js');\n",
      }),
    ).toEqual([
      'entry cli/format.ts:1 -> peer/download/engine.ts',
      'entry cli/shell.ts:1 -> peer/download/index.ts',
      'entry peer/daemon.ts:1 -> peer/download/engine.ts',
      'entry tracker/http/routes.ts:1 -> tracker/store/store.ts',
      'entry peer/seeding.ts:1 -> wire/frames.ts',
    ]);
  });

  it('holds between sibling areas inside peer/: one enters another through its index.ts', () => {
    const siblings = {
      'peer/store/index.ts': "export * from './store.js';\n",
      'peer/store/store.ts': 'export class PeerStore {}\n',
      'peer/files/index.ts': "export * from './files.js';\n",
    };
    expect(
      rulesBroken({
        ...siblings,
        'peer/files/files.ts': "import type { PeerStore } from '../store/index.js';\n",
      }),
    ).toEqual([]);
    expect(
      rulesBroken({
        ...siblings,
        'peer/files/files.ts': "import type { PeerStore } from '../store/store.js';\n",
      }),
    ).toEqual(['entry peer/files/files.ts:1 -> peer/store/store.ts']);
  });

  it('fails on an import of a file that is not there', () => {
    expect(rulesBroken({ 'peer/lock.ts': "import { x } from './nowhere.js';\n" })).toEqual([
      'missing peer/lock.ts:1 -> peer/nowhere.ts',
    ]);
  });

  it('ignores comments, packages and strings that merely contain // or quotes', () => {
    expect(
      rulesBroken({
        'tracker/http/doc.ts': [
          "// import { x } from '../../peer/index.js';",
          "/* export * from '../../wire/frames.js'; */",
          "import { request } from 'undici';",
          "const url = 'http://127.0.0.1'; import { openStore } from '../store/index.js';",
          '',
        ].join('\n'),
      }),
    ).toEqual([]);
  });
});
