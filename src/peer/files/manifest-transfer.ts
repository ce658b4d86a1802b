import type { FileDetail, ManifestJson } from '../../protocol/api.js';
import { CoterieError } from '../../protocol/errors.js';
import { computeFileId, type Manifest, validateManifest } from '../../protocol/manifest.js';
import {
  assembleManifest,
  type ManifestPage,
  pagesOf,
  rootFileId,
  validatePage,
  validateRoot,
} from '../../protocol/manifest-pages.js';
import type { TrackerHttpClient } from '../tracker/http-client.js';

/** A file's detail with its whole manifest: a folder's put together from its pages and checked. */
export type FullFileDetail = Omit<FileDetail, 'manifest'> & { manifest: Manifest };

/** Page requests in flight at once: pages are ≤ 1 MiB, a 100,000-file tree has about 40. */
const PAGE_CALLS = 4;

const notTheId = () =>
  new CoterieError('INVALID_MANIFEST', 'the tracker sent a manifest that does not match the file id');

/**
 * The detail of a file from the tracker, its manifest whole: a folder's root
 * must hash to the file id, and each of its pages, fetched one by one, to its
 * name in the root; every page's paths are checked as it arrives and the
 * tree as a whole once put together (INVALID_MANIFEST), before anything
 * touches the disk.
 */
export async function getFileDetail(
  http: TrackerHttpClient,
  params: { groupId: string; file: string },
  version?: number,
): Promise<FullFileDetail> {
  const detail = await http.call('getFile', {
    params,
    ...(version === undefined ? {} : { query: { version: String(version) } }),
  });
  return { ...detail, manifest: await manifestOf(http, detail.groupId, detail.fileId, detail.manifest) };
}

async function manifestOf(
  http: TrackerHttpClient,
  groupId: string,
  fileId: string,
  sent: ManifestJson,
): Promise<Manifest> {
  if (sent.version !== 2) {
    const manifest = validateManifest(sent);
    if (manifest.files !== undefined || computeFileId(manifest) !== fileId) throw notTheId();
    return manifest;
  }
  const root = validateRoot(sent);
  if (rootFileId(root) !== fileId) throw notTheId();
  const pages = new Map<string, ManifestPage>();
  await eachLimited([...new Set([...root.filePages, ...root.piecePages])], async (hash) => {
    pages.set(hash, validatePage(await http.call('getManifestPage', { params: { groupId, hash } })));
  });
  return assembleManifest(root, (hash) => pages.get(hash));
}

/**
 * What a share or update request carries for this manifest: a single file's
 * whole; for a folder, its root, once each of its pages is on the tracker.
 */
export async function sendManifest(
  http: TrackerHttpClient,
  groupId: string,
  manifest: Manifest,
): Promise<ManifestJson> {
  if (manifest.files === undefined) {
    return { version: 1, size: manifest.size, pieceSize: manifest.pieceSize, pieces: manifest.pieces };
  }
  const { root, pages } = pagesOf(manifest);
  await eachLimited(pages, async ({ hash, page }) => {
    const res = await http.call('putManifestPage', { params: { groupId }, body: page });
    if (res.hash !== hash) throw new CoterieError('INTERNAL', 'the tracker named a manifest page otherwise');
  });
  return root;
}

async function eachLimited<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(PAGE_CALLS, items.length) }, worker));
}
