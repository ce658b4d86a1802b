// The tracker's side of paged folder manifests (protocol/manifest-pages.ts), as one suite run on
// SQLite (test/integration/tracker-manifest-pages.test.ts) and on PostgreSQL
// (test/cluster/manifest-pages.test.ts): pages up one by one, the root shared, the tree back.
import { createHash } from 'node:crypto';
import { expect, it } from 'vitest';
import { type Manifest, validateManifest } from '../../src/protocol/manifest.js';
import {
  assembleManifest,
  type ManifestPage,
  type ManifestRoot,
  pagesOf,
  rootFileId,
} from '../../src/protocol/manifest-pages.js';
import { randomPeerId, type TrackerClient } from './tracker.js';

type Err = { error: { code: string } };

/** A tree of `n` files of one 16 KiB piece each, in nested folders. */
export function nestedTree(n: number, salt = ''): Manifest {
  const files = Array.from({ length: n }, (_, i) => ({
    path: `d${String(i % 7)}/s${String(Math.floor(i / 1000)).padStart(3, '0')}/f${String(i).padStart(6, '0')}.bin`,
    size: 16 * 1024,
  })).sort((a, b) => (a.path < b.path ? -1 : 1));
  const pieces = files.map((_, i) => createHash('sha256').update(`${salt}${i}`).digest('hex'));
  return validateManifest({ version: 2, size: n * 16 * 1024, pieceSize: 16 * 1024, pieces, files });
}

export function manifestPagesSuite(api: () => TrackerClient, prefix: string): void {
  const group = async (p: string) => {
    const owner = await api().user(`${prefix}${p}-o`);
    const outsider = await api().user(`${prefix}${p}-x`);
    const groupId = `${prefix}${p}-g`;
    await api().call('POST', '/v1/groups', { token: owner, body: { groupId } });
    return { owner, outsider, groupId };
  };
  const put = (token: string, groupId: string, page: unknown) =>
    api().call<{ hash: string } & Err>('POST', `/v1/groups/${groupId}/manifest-pages`, { token, body: page });
  const share = (token: string, groupId: string, manifest: unknown, name = 'tree') =>
    api().call<{ fileId: string } & Err>('POST', `/v1/groups/${groupId}/files`, {
      token,
      body: { name, manifest, peerId: randomPeerId() },
    });

  it('takes a 9,000-file tree page by page, each request under 1 MiB, and gives it back the same way', async () => {
    const { owner, outsider, groupId } = await group('a');
    const m = nestedTree(9000);
    const { root, pages } = pagesOf(m);
    expect(root.filePages.length).toBeGreaterThan(1);
    expect(root.piecePages.length).toBeGreaterThan(1);
    // The root cannot be shared before its pages are there.
    const early = await share(owner, groupId, root);
    expect([early.status, early.body.error.code]).toEqual([400, 'INVALID_MANIFEST']);
    for (const p of pages) {
      expect(JSON.stringify(p.page).length).toBeLessThan(1024 * 1024);
      const r = await put(owner, groupId, p.page);
      expect(r.status).toBe(200);
      expect(r.body.hash).toBe(p.hash);
    }
    const s = await share(owner, groupId, root);
    expect(s.status).toBe(201);
    expect(s.body.fileId).toBe(rootFileId(root));
    const d = await api().call<{ manifest: ManifestRoot; fileId: string }>(
      'GET',
      `/v1/groups/${groupId}/files/tree`,
      { token: owner },
    );
    expect(d.body.manifest).toEqual(root);
    expect(d.text.length).toBeLessThan(16 * 1024);
    const back = new Map<string, ManifestPage>();
    for (const h of [...root.filePages, ...root.piecePages]) {
      const g = await api().call<ManifestPage>('GET', `/v1/groups/${groupId}/manifest-pages/${h}`, {
        token: owner,
      });
      expect(g.status).toBe(200);
      back.set(h, g.body);
    }
    expect(assembleManifest(d.body.manifest, (h) => back.get(h))).toEqual(m);
    // Members only, both ways; an unknown page is 404.
    const notMember = await put(outsider, groupId, pages[0]!.page);
    expect(notMember.status).toBe(403);
    const peek = await api().call<Err>('GET', `/v1/groups/${groupId}/manifest-pages/${root.filePages[0]}`, {
      token: outsider,
    });
    expect(peek.status).toBe(403);
    const none = await api().call<Err>('GET', `/v1/groups/${groupId}/manifest-pages/${'0'.repeat(64)}`, {
      token: owner,
    });
    expect([none.status, none.body.error.code]).toEqual([404, 'FILE_NOT_FOUND']);
  });

  it('refuses bad pages as they arrive and roots the pages do not bear out', async () => {
    const { owner, groupId } = await group('b');
    for (const path of ['../x', '/etc/passwd', 'a\\b', 'docs/CON', 'A/../b']) {
      const r = await put(owner, groupId, { kind: 'files', files: [{ path, size: 1 }] });
      expect([r.status, r.body.error.code], path).toEqual([400, 'INVALID_MANIFEST']);
    }
    const link = await put(owner, groupId, { kind: 'files', files: [{ path: 'l', size: 1, link: '/etc' }] });
    expect([link.status, link.body.error.code]).toEqual([400, 'BAD_REQUEST']);
    // Pages each fine alone, named out of order by the root: the tree's paths are out of order.
    const { root, pages } = pagesOf(nestedTree(5000, 'b'));
    for (const p of pages) expect((await put(owner, groupId, p.page)).status).toBe(200);
    const swapped = { ...root, filePages: [...root.filePages].reverse() };
    const r = await share(owner, groupId, swapped);
    expect([r.status, r.body.error.code]).toEqual([400, 'INVALID_MANIFEST']);
    const short = await share(owner, groupId, { ...root, fileCount: root.fileCount - 1 });
    expect([short.status, short.body.error.code]).toEqual([400, 'INVALID_MANIFEST']);
    // Nothing was listed by the refusals.
    const list = await api().call<{ files: unknown[] }>('GET', `/v1/groups/${groupId}/files`, {
      token: owner,
    });
    expect(list.body.files).toEqual([]);
  });
}
