import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { callDaemon } from '../../src/peer/control/client.js';
import type { FileTree } from '../../src/protocol/control.js';
import { FILES_PER_PAGE } from '../../src/protocol/manifest-pages.js';
import { stop } from '../helpers/cli-harness.js';
import { cliSwarm } from '../helpers/cli-swarm.js';
import { filesUnder, shareFolderInGroup } from '../helpers/folder-group.js';
import { peerDbRows } from '../helpers/peer-db.js';

// A shared folder's manifest in peer.db (schema 9) through the real binary: alice shares a tree
// of more files than one manifest page holds, so her share's row keeps only the root and its
// pages are rows of their own; she restarts, and seeds the tree again from those pages (only
// she has it): bob downloads it byte-identical, and list_files still shows it whole.

type Name = 'alice' | 'bob';
const FILES = FILES_PER_PAGE + 200;
const path = (i: number) => `d${i % 9}/f${String(i).padStart(5, '0')}.txt`;
const body = (i: number) => `file ${i}\n`.repeat(1 + (i % 4));

describe('a shared folder seeded again after a restart, from its manifest pages', {
  timeout: 480_000,
}, () => {
  it('keeps the root and pages in peer.db, and serves the whole tree from them after a restart', async () => {
    const swarm = cliSwarm<Name>('coterie-folder-restart-');
    const { root, ok } = swarm;
    const src = join(root, 'files', 'pages');
    for (let i = 0; i < FILES; i++) {
      mkdirSync(join(src, `d${i % 9}`), { recursive: true });
      writeFileSync(join(src, path(i)), body(i));
    }
    await shareFolderInGroup(swarm, ['alice', 'bob'], src, `sharing folder 'pages' (${FILES} files`);

    await stop(swarm.procs.get('alice')!.child);
    const [share] = peerDbRows(swarm.dir('alice'), 'SELECT length(manifest_json) AS n FROM shares') as {
      n: number;
    }[];
    expect(share!.n).toBeLessThan(1000); // the root only
    const pages = peerDbRows(swarm.dir('alice'), 'SELECT count(*) AS n FROM share_pages');
    expect(pages).toEqual([{ n: 3 }]); // two file pages, one piece page

    await swarm.startPeer('alice');
    const tree = (await callDaemon(swarm.dir('bob'), 'list_files', ['rel', 'pages'])) as FileTree;
    expect(tree.files).toHaveLength(FILES);
    const dest = join(root, 'bob-pages');
    await ok('bob', 'download_file', 'rel', 'pages', dest, '--wait');
    const expected = Object.fromEntries(Array.from({ length: FILES }, (_, i) => [path(i), body(i).length]));
    expect(filesUnder(dest)).toEqual(expected);
    for (let i = 0; i < FILES; i += 97) expect(readFileSync(join(dest, path(i)), 'utf8')).toBe(body(i));
    expect(readFileSync(join(dest, path(FILES - 1)), 'utf8')).toBe(body(FILES - 1));
  });
});
