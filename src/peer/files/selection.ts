import picomatch from 'picomatch';
import type { FileTree } from '../../protocol/control.js';
import { CoterieError } from '../../protocol/errors.js';
import { type Manifest, validateManifest } from '../../protocol/manifest.js';
import type { DownloadRecord, PeerStore } from '../store/index.js';
import type { FullFileDetail } from './manifest-transfer.js';

/**
 * Which files of a folder a download fetches: `--only` globs (none: every
 * file), minus `--exclude` globs, plus what select_files added later (added
 * files are fetched even when an exclude matched them). Globs are matched
 * against the tree's relative paths (`docs/**`, `*.md`, `src/?.c`), dot files
 * included. Kept in peer.db's meta table beside the download, so a resumed
 * download knows its selection (no migration: only the download reads it).
 */
export interface Selection {
  only: string[];
  exclude: string[];
  added: string[];
}

export const WHOLE_TREE: Selection = Object.freeze({ only: [], exclude: [], added: [] }) as Selection;

const selectionKey = (downloadId: number) => `download_selection:${downloadId}`;

type MetaStore = Pick<PeerStore, 'getMeta' | 'setMeta'>;

export function rememberSelection(store: MetaStore, downloadId: number, selection: Selection): void {
  store.setMeta(selectionKey(downloadId), JSON.stringify(selection));
}

export function selectionOf(store: MetaStore, downloadId: number): Selection {
  const raw = store.getMeta(selectionKey(downloadId));
  if (raw === undefined) return WHOLE_TREE;
  try {
    const v = JSON.parse(raw) as Partial<Selection>;
    const list = (x: unknown) =>
      Array.isArray(x) ? x.filter((g): g is string => typeof g === 'string') : [];
    return { only: list(v.only), exclude: list(v.exclude), added: list(v.added) };
  } catch {
    return WHOLE_TREE;
  }
}

/** A glob as a matcher; USAGE for an empty one. */
function matcher(globs: readonly string[]): (path: string) => boolean {
  for (const g of globs) {
    if (g.trim().length === 0)
      throw new CoterieError('USAGE', 'an empty glob selects nothing: give a pattern such as docs/**');
  }
  return globs.length === 0 ? () => false : picomatch([...globs], { dot: true });
}

/** Indices into manifest.files of the selected files. */
export function selectedFiles(manifest: Manifest, selection: Selection): number[] {
  const files = manifest.files ?? [];
  const only = selection.only.length === 0 ? () => true : matcher(selection.only);
  const exclude = matcher(selection.exclude);
  const added = matcher(selection.added);
  const out: number[] = [];
  files.forEach((f, k) => {
    if ((only(f.path) && !exclude(f.path)) || added(f.path)) out.push(k);
  });
  return out;
}

/** USAGE naming the first glob that matches no file of the tree (a typo selects nothing): a bad argument. */
export function assertGlobsMatch(manifest: Manifest, globs: readonly string[], what: string): void {
  const paths = (manifest.files ?? []).map((f) => f.path);
  for (const g of globs) {
    const m = matcher([g]);
    if (!paths.some((p) => m(p))) {
      throw new CoterieError(
        'USAGE',
        `${what} '${g}' matches no file of the folder: 'list_files' shows its paths`,
      );
    }
  }
}

/** The selected bytes of a folder (what its download record counts). */
export function selectedBytes(manifest: Manifest, files: readonly number[]): number {
  return files.reduce((n, k) => n + manifest.files![k]!.size, 0);
}

/**
 * download_file's `--only`/`--exclude` against the file it names: the
 * selection to keep and the bytes it covers. USAGE for globs on a single
 * file or a glob matching nothing.
 */
export function initialSelection(
  manifestJson: unknown,
  only: readonly string[],
  exclude: readonly string[],
): { selection: Selection; size: number } {
  const manifest = validateManifest(manifestJson);
  if (manifest.files === undefined) {
    if (only.length + exclude.length > 0) {
      throw new CoterieError(
        'USAGE',
        '--only and --exclude choose files of a folder share; this is a single file',
      );
    }
    return { selection: WHOLE_TREE, size: manifest.size };
  }
  assertGlobsMatch(manifest, only, '--only');
  assertGlobsMatch(manifest, exclude, '--exclude');
  const selection = { only: [...only], exclude: [...exclude], added: [] };
  const files = selectedFiles(manifest, selection);
  if (files.length === 0) {
    throw new CoterieError('USAGE', 'the --only and --exclude globs together select no file of the folder');
  }
  const size = selectedBytes(manifest, files);
  return { selection, size };
}

/** select_files: the globs added to a download's kept selection; the files and bytes now selected. */
export function widenSelection(
  store: MetaStore,
  downloadId: number,
  manifestJson: unknown,
  globs: readonly string[],
): { files: number[]; size: number } {
  const manifest = validateManifest(manifestJson);
  if (manifest.files === undefined) {
    throw new CoterieError(
      'USAGE',
      'select_files chooses files of a folder share; this download is a single file',
    );
  }
  assertGlobsMatch(manifest, globs, 'select_files:');
  const sel = selectionOf(store, downloadId);
  const next = { ...sel, added: [...sel.added, ...globs.filter((g) => !sel.added.includes(g))] };
  rememberSelection(store, downloadId, next);
  const files = selectedFiles(manifest, next);
  return { files, size: selectedBytes(manifest, files) };
}

/** list_files with a name: the share's files, a folder's tree checked as a download would check it. */
export function fileTreeOf(detail: FullFileDetail): FileTree {
  const manifest = detail.manifest; // checked whole, every page and path, by getFileDetail
  const { groupId, name, fileId } = detail;
  const folder = manifest.files !== undefined;
  const files = manifest.files ?? [{ path: name, size: manifest.size }];
  return { groupId, name, fileId, size: manifest.size, folder, files };
}

/**
 * The download select_files widens: the running one of that name in that group,
 * else the latest (FILE_NOT_FOUND when there is none).
 */
export function downloadToWiden(
  store: PeerStore,
  isRunning: (id: number) => boolean,
  groupId: string,
  fileName: string,
): DownloadRecord {
  const mine = store.downloads.list().filter((d) => d.groupId === groupId && d.fileName === fileName);
  const rec = mine.find((d) => isRunning(d.id)) ?? mine[mine.length - 1];
  if (rec === undefined) {
    throw new CoterieError(
      'FILE_NOT_FOUND',
      `no download of '${fileName}' from '${groupId}': download_file starts one`,
    );
  }
  return rec;
}
