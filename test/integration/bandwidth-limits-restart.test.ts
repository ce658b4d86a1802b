import { describe, expect, it } from 'vitest';
import { callDaemon } from '../../src/peer/control/client.js';
import type { LimitsView } from '../../src/protocol/control.js';
import { stop } from '../helpers/cli-harness.js';
import { cliSwarm } from '../helpers/cli-swarm.js';

// set_limits is kept in peer.db (migration 7): a real `coterie peer` process stopped and started
// again holds to the global and group limits set while it ran; a limit given on its command line
// replaces the kept one for that direction (and is kept), and 0 lifts one for good.

const MiB = 1024 * 1024;

describe('bandwidth limits across restarts', { timeout: 120_000 }, () => {
  const swarm = cliSwarm<'bob'>('coterie-limits-restart-');
  const limits = async () => (await callDaemon(swarm.dir('bob'), 'show_limits', [])) as LimitsView;
  const restart = async (args: string[] = []) => {
    await stop(swarm.procs.get('bob')!.child);
    await swarm.startPeer('bob', args);
  };

  it('keeps the global and per-group limits set at run time', async () => {
    await swarm.startTracker();
    await swarm.startPeer('bob');
    await swarm.ok('bob', 'set_limits', '--upload', '3MiB/s', '--download', '5MiB/s');
    await swarm.ok('bob', 'set_limits', '--group', 'films', '--download', '2MiB/s');
    await swarm.ok('bob', 'set_limits', '--group', 'music', '--upload', '1MiB/s');
    const before = await limits();
    expect(before.global).toEqual({ uploadBytesPerSec: 3 * MiB, downloadBytesPerSec: 5 * MiB });

    await restart();
    const after = await limits();
    expect(after.global).toEqual(before.global);
    expect(after.groups).toEqual([
      { groupId: 'films', uploadBytesPerSec: 0, downloadBytesPerSec: 2 * MiB },
      { groupId: 'music', uploadBytesPerSec: 1 * MiB, downloadBytesPerSec: 0 },
    ]);

    // Lifted limits stay lifted; a command-line limit wins for its direction and is kept.
    await swarm.ok('bob', 'set_limits', '--group', 'music', '--upload', '0');
    await restart(['--upload-limit', '7MiB/s']);
    let now = await limits();
    expect(now.global).toEqual({ uploadBytesPerSec: 7 * MiB, downloadBytesPerSec: 5 * MiB });
    expect(now.groups).toEqual([{ groupId: 'films', uploadBytesPerSec: 0, downloadBytesPerSec: 2 * MiB }]);
    await restart();
    now = await limits();
    expect(now.global).toEqual({ uploadBytesPerSec: 7 * MiB, downloadBytesPerSec: 5 * MiB });
  });
});
