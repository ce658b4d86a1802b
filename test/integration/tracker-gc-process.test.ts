// The file GC in a tracker process (SQLite), through the HTTP API only: a version dropped by
// retention and a deleted name leave the store (rows and the pages only they used) once the grace
// is over, counted on /metrics, while the live version is still whole for a download (its root,
// then every page). The GC suite (test/helpers/gc-suite.ts) covers the cases one by one.
import { describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/protocol/manifest.js';
import {
  assembleManifest,
  type ManifestPage,
  type ManifestRoot,
  pagesOf,
} from '../../src/protocol/manifest-pages.js';
import { nestedTree } from '../helpers/manifest-pages-suite.js';
import { fakeManifest, randomPeerId, trackerPerFile } from '../helpers/tracker.js';
import { eventually } from '../helpers/wait.js';

const fileTracker = trackerPerFile(['--gc-grace-ms', '1000', '--gc-interval-ms', '200']);

/** A counter or gauge on /metrics (summed over its labels matching `label`), 0 when absent. */
async function metric(name: string, label = ''): Promise<number> {
  const { text } = await fileTracker.api.call('GET', '/metrics');
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(name) && line.includes(label) && !line.startsWith('#'))
      sum += Number(line.split(' ').at(-1));
  }
  return sum;
}

describe('file GC in a tracker process', { timeout: 60_000 }, () => {
  it('removes a dropped version and a deleted name after the grace; the live version downloads whole', async () => {
    const api = fileTracker.api;
    const owner = await api.user('gc-owner');
    const groupId = 'gc-g';
    expect((await api.call('POST', '/v1/groups', { token: owner, body: { groupId } })).status).toBe(201);
    expect(
      (await api.call('POST', `/v1/groups/${groupId}/versions`, { token: owner, body: { keep: 1 } })).status,
    ).toBe(200);
    const upload = async (m: Manifest) => {
      const { root, pages } = pagesOf(m);
      for (const p of pages) {
        const r = await api.call('POST', `/v1/groups/${groupId}/manifest-pages`, {
          token: owner,
          body: p.page,
        });
        expect(r.status).toBe(200);
      }
      return root;
    };
    const a = nestedTree(3000, 'a');
    const b = nestedTree(3000, 'b');
    const shared = await api.call('POST', `/v1/groups/${groupId}/files`, {
      token: owner,
      body: { name: 'tree', manifest: await upload(a), peerId: randomPeerId() },
    });
    expect(shared.status).toBe(201);
    const updated = await api.call<{ dropped: string[] }>(
      'POST',
      `/v1/groups/${groupId}/files/tree/versions`,
      {
        token: owner,
        body: { manifest: await upload(b), peerId: randomPeerId() },
      },
    );
    expect(updated.status).toBe(201);
    expect(updated.body.dropped).toHaveLength(1); // version 1 left the listing (keep 1)
    const solo = fakeManifest('gc-solo');
    const s = await api.call('POST', `/v1/groups/${groupId}/files`, {
      token: owner,
      body: { name: 'solo', manifest: solo.manifest, peerId: randomPeerId() },
    });
    expect(s.status).toBe(201);
    expect((await api.call('POST', `/v1/groups/${groupId}/files/solo/delete`, { token: owner })).status).toBe(
      200,
    );

    const aOnly = pagesOf(a).pages.filter((p) => !pagesOf(b).pages.some((q) => q.hash === p.hash));
    expect(aOnly.length).toBeGreaterThan(0);
    await eventually(
      async () => ((await metric('coterie_gc_files_removed_total')) === 2 ? true : undefined),
      20_000,
    );
    expect(await metric('coterie_gc_pages_removed_total', 'reason="unreferenced"')).toBe(aOnly.length);
    expect(await metric('coterie_gc_pages_removed_total', 'reason="orphan"')).toBe(0);
    const gone = await api.call('GET', `/v1/groups/${groupId}/manifest-pages/${aOnly[0]!.hash}`, {
      token: owner,
    });
    expect(gone.status).toBe(404);

    // The live version, as a download reads it: its root, then each page.
    const detail = await api.call<{ manifest: ManifestRoot }>('GET', `/v1/groups/${groupId}/files/tree`, {
      token: owner,
    });
    expect(detail.status).toBe(200);
    const got = new Map<string, ManifestPage>();
    for (const h of [...detail.body.manifest.filePages, ...detail.body.manifest.piecePages]) {
      const p = await api.call<ManifestPage>('GET', `/v1/groups/${groupId}/manifest-pages/${h}`, {
        token: owner,
      });
      expect(p.status).toBe(200);
      got.set(h, p.body);
    }
    expect(assembleManifest(detail.body.manifest, (h) => got.get(h))).toEqual(b);
  });
});
