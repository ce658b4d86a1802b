import type { AnyCommandSpec, ParamSpec } from './command-types.js';
import { parseQuota, parseReplicaCount } from './command-words.js';

/**
 * The command table's rows for storage peers (issue 16): a member's peer offers space to a
 * group, the owner sets how many replicas its files keep. Plain rows of the one table
 * (commands.ts), in its order before status.
 */

const GROUP: ParamSpec = { name: 'group_id', kind: 'group' };
const p = (name: string, kind: ParamSpec['kind']): ParamSpec => ({ name, kind });

export const STORAGE_COMMANDS: readonly AnyCommandSpec[] = [
  {
    name: 'offer_storage',
    forms: [[GROUP, p('quota', 'size')]],
    summary: "offers this peer's space (50GiB, 500MiB) to keep replicas of a group's files (members only)",
    example: 'offer_storage photos 50GiB',
    errors: ['PEER_MISMATCH', 'GROUP_NOT_FOUND', 'NOT_A_MEMBER', 'NOT_LOGGED_IN', 'TRACKER_UNAVAILABLE'],
    run: (c, a) => c.offerStorage(a.values.group_id!, parseQuota(a.values.quota!)),
  },
  {
    name: 'withdraw_storage',
    forms: [[GROUP]],
    flags: ['now'],
    summary: 'ends the storage offer once its replicas live elsewhere (--now: at once)',
    example: 'withdraw_storage photos --now',
    errors: ['NOT_FOUND', 'NOT_A_MEMBER', 'NOT_LOGGED_IN', 'TRACKER_UNAVAILABLE'],
    run: (c, a) => c.withdrawStorage(a.values.group_id!, a.flags.has('now')),
  },
  {
    name: 'set_replication',
    forms: [
      [GROUP, p('min', 'replicas'), p('max', 'replicas')],
      [GROUP, p('min', 'replicas')],
    ],
    summary: "sets how many replicas of each file the group's storage peers keep (owner only)",
    example: 'set_replication photos 3 4',
    errors: [
      'NOT_OWNER',
      'BAD_REQUEST',
      'GROUP_NOT_FOUND',
      'NOT_A_MEMBER',
      'NOT_LOGGED_IN',
      'TRACKER_UNAVAILABLE',
    ],
    run: (c, a) =>
      c.setReplication(
        a.values.group_id!,
        parseReplicaCount('min', a.values.min!),
        a.values.max === undefined ? undefined : parseReplicaCount('max', a.values.max),
      ),
  },
  {
    name: 'list_storage',
    forms: [[GROUP]],
    summary: "lists a group's storage peers and how well its files are replicated (members only)",
    example: 'list_storage photos',
    errors: ['GROUP_NOT_FOUND', 'NOT_A_MEMBER', 'NOT_LOGGED_IN', 'TRACKER_UNAVAILABLE'],
    run: (c, a) => c.listStorage(a.values.group_id!),
  },
];
