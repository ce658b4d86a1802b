import { describe, expect, it } from 'vitest';
import { countOf, formatBytes, formatRate, formatResult } from '../../src/cli/format.js';

describe('cli format', () => {
  it('counts in the singular for one and the plural otherwise', () => {
    expect(countOf(0, 'peer')).toBe('0 peers');
    expect(countOf(1, 'peer')).toBe('1 peer');
    expect(countOf(3, 'peer')).toBe('3 peers');
  });

  it('prints sizes and rates in binary units', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(256 * 1024 ** 2)).toBe('256.0 MiB');
    expect(formatRate(1.5 * 1024 ** 3)).toBe('1.5 GiB/s');
  });

  it("shows a file's versions, its lock, and what an update and a delete did", () => {
    const at = Date.now();
    const id = (c: string) => c.repeat(64);
    const versions = formatResult('list_versions', {
      groupId: 'docs',
      name: 'a.txt',
      currentVersion: 2,
      keep: 5,
      lock: { groupId: 'docs', name: 'a.txt', holder: 'bob', expiresAt: at },
      versions: [
        {
          version: 2,
          fileId: id('b'),
          size: 2048,
          author: 'bob',
          createdAt: at,
          replicas: [
            { peerId: id('1'), userId: 's1', state: 'live' },
            { peerId: id('2'), userId: 's2', state: 'grace' },
          ],
        },
        { version: 1, fileId: id('a'), size: 10, author: 'alice', createdAt: at },
      ],
    }).split('\n');
    expect(versions[0]).toBe("'a.txt' in 'docs': version 2 is current; the group keeps 5");
    expect(versions[1]).toMatch(/^locked by 'bob' until \d\d:\d\d:\d\d$/);
    expect(versions[2]).toMatch(/^VERSION\s+SIZE\s+AUTHOR\s+CREATED\s+REPLICAS\s+FILE ID$/);
    expect(versions[3]).toMatch(/^v2 \*\s+2\.0 KiB\s+bob\s+\S+\s+2 \(1 in grace\)\s+bbbbbbbbbbbb$/);
    expect(versions[4]).toMatch(/^v1\s+10 B\s+alice\s+\S+\s+-\s+aaaaaaaaaaaa$/);
    const update = { groupId: 'docs', fileName: 'a.txt', fileId: id('c'), size: 10, pieces: 1, path: '/x' };
    expect(formatResult('update_file', { ...update, version: 3, created: true, dropped: [id('a')] })).toBe(
      "'a.txt' in 'docs' is now version 3 (10 B, 1 piece) as cccccccccccc; seeding; 1 old version dropped by the group's retention",
    );
    const file = { name: 'a.txt', size: 10, pieceSize: 10, pieceCount: 1, sharers: ['bob'], seeders: 1 };
    const files = formatResult('list_files', {
      groupId: 'docs',
      files: [
        { ...file, fileId: id('a'), sharedAt: at, version: 2, replicas: { live: 1, grace: 1, min: 3 } },
        { ...file, name: 'b.txt', fileId: id('b'), sharedAt: at, replicas: { live: 2, grace: 0, min: 2 } },
        { ...file, name: 'c.txt', fileId: id('c'), sharedAt: at },
        { ...file, name: 'd.txt', fileId: id('d'), sharedAt: at, seeders: 3, partialSeeders: 5 },
      ],
    }).split('\n');
    expect(files[0]).toMatch(/^NAME\s+VERSION\s+SIZE\s+SEEDERS\s+REPLICAS\s+SHARED BY/);
    expect(files[1]).toMatch(/^a\.txt\s+v2\s+10 B\s+1\s+1\/3 \+1 in grace\s+bob\s/);
    expect(files[2]).toMatch(/^b\.txt\s+-\s+10 B\s+1\s+2\/2\s+bob\s/);
    expect(files[3]).toMatch(/^c\.txt\s+-\s+10 B\s+1\s+-\s+bob\s/);
    // Downloaders serving their verified pieces are counted apart (issue 17).
    expect(files[4]).toMatch(/^d\.txt\s+-\s+10 B\s+3, 5 partial\s+-\s+bob\s/);
    expect(formatResult('delete_file', { groupId: 'docs', name: 'a.txt', fileIds: [id('a'), id('b')] })).toBe(
      "deleted 'a.txt' from 'docs' (2 versions); its seeders stop serving it",
    );
  });
});
