import { describe, expect, it } from 'vitest';
import { formatResult } from '../../src/cli/format.js';
import { getCommand, parseArgs } from '../../src/peer/control/commands.js';
import { reportsOf } from '../../src/peer/storage/report.js';
import { MAX_REPLICA_GROUPS_PER_MESSAGE } from '../../src/protocol/session-storage.js';
import { thrownCode } from '../helpers/wait.js';

// The storage commands' words (issue 16) and what list_storage and status print.
describe('storage commands', () => {
  const parse = (name: string, ...words: string[]) => parseArgs(getCommand(name), words);

  it('read quotas with units and refuse malformed ones with USAGE', () => {
    expect(parse('offer_storage', 'films', '50GiB').values.quota).toBe('50GiB');
    for (const bad of ['lots', '50 parsecs', '-1MiB', '0', ''])
      expect(
        thrownCode(() => parse('offer_storage', 'films', bad)),
        bad,
      ).toBe('USAGE');
    expect(thrownCode(() => parse('set_replication', 'films', 'two'))).toBe('USAGE');
    expect(thrownCode(() => parse('set_replication', 'films', '65'))).toBe('USAGE');
    expect(parse('set_replication', 'films', '2', '3').values).toMatchObject({ min: '2', max: '3' });
    expect(parse('withdraw_storage', 'films', '--now').flags.has('now')).toBe(true);
  });

  it('print the storage table with the under-replication warning', () => {
    const text = formatResult('list_storage', {
      groupId: 'films',
      replication: {
        min: 3,
        max: 3,
        storagePeers: 2,
        underReplicatedFiles: 4,
        repairing: 3,
        moving: 1,
        warning: 'under-replicated: 2 of 3 (2 storage peers)',
      },
      peers: [
        {
          peerId: 'a'.repeat(64),
          userId: 'carol',
          zone: 'attic',
          quotaBytes: 50 * 1024 ** 3,
          usedBytes: 1024 ** 2,
          replicasHeld: 4,
          replicasAssigned: 1,
          state: 'live',
          withdrawing: false,
          lastHeartbeatAt: Date.now(),
          offeredAt: Date.now(),
        },
      ],
    });
    expect(text).toContain('warning: under-replicated: 2 of 3 (2 storage peers)');
    expect(text.split('\n')[0]).toBe(
      "replication in 'films': min 3, max 3; 2 storage peers, 4 files under-replicated; 3 files being repaired to min, 1 file being moved off withdrawing peers",
    );
    expect(text).toMatch(/carol\s+aaaaaaaaaaaa\s+attic\s+50\.0 GiB\s+1\.0 MiB\s+4 \(\+1\)\s+live/);
  });

  it('splits a large replicas report into messages of at most 64 groups', () => {
    const groups = Array.from({ length: 130 }, (_, i) => ({ groupId: `g${i}`, held: [], complete: true }));
    const messages = reportsOf(groups);
    expect(messages.map((m) => m.groups.length)).toEqual([MAX_REPLICA_GROUPS_PER_MESSAGE, 64, 2]);
    expect(messages.flatMap((m) => m.groups)).toEqual(groups);
  });
});
