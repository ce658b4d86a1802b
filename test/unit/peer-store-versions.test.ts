import { describe, expect, it } from 'vitest';
import { PeerStore } from '../../src/peer/store/index.js';
import type { Manifest } from '../../src/protocol/manifest.js';
import { peerDbAt } from '../helpers/peer-db.js';
import { tempDir } from '../helpers/temp-dir.js';

// peer.db's shares are one row per version of a name (migration 4): a peer seeds the version
// it uploaded beside the one it updated to, and a deletion removes exactly the file ids named.

const share = (fileId: string, version: number | null, createdAt: number) => ({
  groupId: 'docs',
  fileName: 'a.txt',
  fileId: fileId.repeat(64),
  version,
  path: `/data/${fileId}`,
  size: 10,
  createdAt,
});
const manifest: Manifest = { version: 1, size: 10, pieceSize: 16_384, pieces: ['0'.repeat(64)] };

describe('peer store: shares by version', () => {
  it('keeps several versions of one name, and removes file ids shared before a deletion', () => {
    const store = new PeerStore(tempDir().path);
    try {
      store.shares.put(share('a', 1, 100), manifest);
      store.shares.put(share('b', 2, 200), manifest);
      store.shares.put(share('b', 2, 250), manifest); // the same version shared again: one row
      expect(store.shares.list().map((s) => [s.version, s.createdAt])).toEqual([
        [1, 100],
        [2, 250],
      ]);
      // A deletion at 240 of both: b was shared again since (at 250), so it stays.
      expect(store.shares.removeFiles('docs', ['a'.repeat(64), 'b'.repeat(64)], 240)).toHaveLength(1);
      expect(store.shares.list().map((s) => s.version)).toEqual([2]);
      expect(store.shares.remove('a.txt', 'docs')).toHaveLength(1);
      expect(store.shares.list()).toEqual([]);
    } finally {
      store.close();
    }
  });

  it('migrates a schema-3 peer.db: its shares are kept, their version unknown', () => {
    const dir = tempDir().path;
    peerDbAt(dir, 3, (db) =>
      db.exec(`INSERT INTO shares VALUES ('docs', 'a.txt', '${'c'.repeat(64)}', '/data/c', 10, '{}', 5)`),
    );
    const store = new PeerStore(dir);
    try {
      expect(store.shares.list()).toEqual([{ ...share('c', null, 5) }]);
    } finally {
      store.close();
    }
  });
});
