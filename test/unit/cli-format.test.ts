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
        { version: 2, fileId: id('b'), size: 2048, author: 'bob', createdAt: at },
        { version: 1, fileId: id('a'), size: 10, author: 'alice', createdAt: at },
      ],
    }).split('\n');
    expect(versions[0]).toBe("'a.txt' in 'docs': version 2 is current; the group keeps 5");
    expect(versions[1]).toMatch(/^locked by 'bob' until \d\d:\d\d:\d\d$/);
    expect(versions[2]).toMatch(/^VERSION\s+SIZE\s+AUTHOR\s+CREATED\s+REPLICAS\s+FILE ID$/);
    expect(versions[3]).toMatch(/^v2 \*\s+2\.0 KiB\s+bob\s+\S+\s+-\s+bbbbbbbbbbbb$/);
    expect(versions[4]).toMatch(/^v1\s+10 B\s+alice\s/);
    const update = { groupId: 'docs', fileName: 'a.txt', fileId: id('c'), size: 10, pieces: 1, path: '/x' };
    expect(formatResult('update_file', { ...update, version: 3, created: true, dropped: [id('a')] })).toBe(
      "'a.txt' in 'docs' is now version 3 (10 B, 1 piece) as cccccccccccc; seeding; 1 old version dropped by the group's retention",
    );
    expect(formatResult('delete_file', { groupId: 'docs', name: 'a.txt', fileIds: [id('a'), id('b')] })).toBe(
      "deleted 'a.txt' from 'docs' (2 versions); its seeders stop serving it",
    );
  });
});
