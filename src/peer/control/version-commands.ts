import { MAX_KEEP_VERSIONS, MAX_LOCK_TTL_SECONDS } from '../../protocol/version-limits.js';
import type { AnyCommandSpec, ParamSpec } from './command-types.js';
import { numberOption, parseDuration, wholeNumber } from './command-words.js';

/**
 * The command table's rows for a file name's versions, deletes and locks (issue 16's write,
 * delete and lock of seed 004): plain rows of the one table (commands.ts), in its order after
 * download_file.
 */

const GROUP: ParamSpec = { name: 'group_id', kind: 'group' };
const FILE: ParamSpec = { name: 'file_name', kind: 'file_name' };

export const FILE_VERSION_COMMANDS: readonly AnyCommandSpec[] = [
  {
    name: 'update_file',
    forms: [[GROUP, FILE, { name: 'path', kind: 'source_path' }]],
    options: ['if-version'],
    summary:
      "shares new content under a file's name as its next version and seeds it; --if-version N: only if N is still the current version",
    streams: true,
    example: 'update_file photos holiday.jpg ./holiday-v2.jpg --if-version 1',
    errors: [
      'FILE_NOT_FOUND',
      'VERSION_CONFLICT',
      'FILE_LOCKED',
      'FILE_NAME_TAKEN',
      'PATH_INVALID',
      'NOT_A_MEMBER',
      'NOT_LOGGED_IN',
      'TRACKER_UNAVAILABLE',
    ],
    run: (c, a, io) =>
      c.updateFile(
        a.values.group_id!,
        a.values.file_name!,
        a.values.path!,
        numberOption(a, 'if-version', 1),
        io,
      ),
  },
  {
    name: 'delete_file',
    forms: [[GROUP, FILE]],
    summary: 'deletes a file and every version of it from a group; its seeders stop (an author or the owner)',
    example: 'delete_file photos holiday.jpg',
    errors: [
      'FILE_NOT_FOUND',
      'NOT_AUTHOR',
      'FILE_LOCKED',
      'NOT_A_MEMBER',
      'NOT_LOGGED_IN',
      'TRACKER_UNAVAILABLE',
    ],
    run: (c, a) => c.deleteFile(a.values.group_id!, a.values.file_name!),
  },
  {
    name: 'lock_file',
    forms: [[GROUP, FILE]],
    options: ['ttl'],
    summary:
      'locks a file against updates and deletes by others for --ttl (5m; at most 24h), or until unlock_file or this peer stops; again to renew',
    example: 'lock_file photos holiday.jpg --ttl 5m',
    errors: ['FILE_NOT_FOUND', 'FILE_LOCKED', 'NOT_A_MEMBER', 'NOT_LOGGED_IN', 'TRACKER_UNAVAILABLE'],
    run: (c, a) => {
      const ttl = a.options.ttl;
      return c.lockFile(
        a.values.group_id!,
        a.values.file_name!,
        ttl === undefined ? undefined : parseDuration('--ttl', ttl, MAX_LOCK_TTL_SECONDS),
      );
    },
  },
  {
    name: 'unlock_file',
    forms: [[GROUP, FILE]],
    summary: 'releases the lock of a file (its holder or the group owner)',
    example: 'unlock_file photos holiday.jpg',
    errors: ['FILE_NOT_FOUND', 'FILE_LOCKED', 'NOT_A_MEMBER', 'NOT_LOGGED_IN', 'TRACKER_UNAVAILABLE'],
    run: (c, a) => c.unlockFile(a.values.group_id!, a.values.file_name!),
  },
  {
    name: 'list_versions',
    forms: [[GROUP, FILE]],
    summary: "lists a file's kept versions, newest first, with their size, author and time, and its lock",
    example: 'list_versions photos holiday.jpg',
    errors: ['FILE_NOT_FOUND', 'NOT_A_MEMBER', 'NOT_LOGGED_IN', 'TRACKER_UNAVAILABLE'],
    run: (c, a) => c.listVersions(a.values.group_id!, a.values.file_name!),
  },
  {
    name: 'set_versions',
    forms: [[GROUP, { name: 'keep', kind: 'count' }]],
    summary: `sets how many versions of each file the group keeps (1–${MAX_KEEP_VERSIONS}, default 5); older ones are dropped (owner only)`,
    example: 'set_versions photos 10',
    errors: ['NOT_OWNER', 'GROUP_NOT_FOUND', 'NOT_A_MEMBER', 'NOT_LOGGED_IN', 'TRACKER_UNAVAILABLE'],
    run: (c, a) =>
      c.setVersions(a.values.group_id!, wholeNumber('set_versions', a.values.keep!, 1, MAX_KEEP_VERSIONS)),
  },
];
