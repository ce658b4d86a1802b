import type { Logger } from 'pino';
import type { TrackerMessage } from '../../protocol/session.js';
import type { TrackerEvent } from '../events/index.js';
import type { FileVersionsService } from '../services/file-versions.js';
import type { RevocationsService } from '../services/revocations.js';

export interface RevocationPushDeps<S> {
  revocations: Pick<RevocationsService, 'recipients' | 'recentFor'>;
  /** Deleted names (and versions dropped by retention): seeders stop serving them too. */
  deletions?: Pick<FileVersionsService, 'recentDeletionsFor'>;
  /** This tracker's sessions of a user that said hello. */
  sessionsOf(userId: string): Iterable<S>;
  send(s: S, message: TrackerMessage): void;
  logger: Logger;
}

export interface RevocationPush<S> {
  /** A revocation heard on the bus: pushed to this tracker's sessions of the group's members. */
  onEvent(e: Extract<TrackerEvent, { kind: 'tickets_revoked' }>): void;
  /** A deletion heard on the bus: pushed, like a revocation, to the sessions of the group's members. */
  onFileDeleted(e: Extract<TrackerEvent, { kind: 'file_deleted' }>): void;
  /** A session said hello: it gets the recent revocations and deletions of its user's groups. */
  afterWelcome(s: S, userId: string): void;
}

/**
 * Tells seeders of ticket revocations (services/revocations.ts) and of
 * deleted files (services/file-versions.ts): a revocation or deletion
 * heard on the bus goes to this tracker's sessions of the group's members, and
 * a session that says hello gets the recent ones of its user's groups (its
 * peer may have missed them while it had no session).
 */
export function createRevocationPush<S>(deps: RevocationPushDeps<S>): RevocationPush<S> {
  const { revocations, logger } = deps;
  function toMembers(groupId: string, message: TrackerMessage, what: string) {
    revocations.recipients(groupId).then(
      (users) => {
        for (const u of users) for (const s of deps.sessionsOf(u)) deps.send(s, message);
      },
      (err: unknown) => logger.error({ err, groupId }, `cannot tell seeders of ${what}`),
    );
  }
  return {
    onEvent(e: Extract<TrackerEvent, { kind: 'tickets_revoked' }>): void {
      // Anyone with the database's rights can NOTIFY: a malformed event is dropped, not pushed.
      if (typeof e.groupId !== 'string' || typeof e.userId !== 'string' || !Number.isInteger(e.before))
        return;
      const message: TrackerMessage = {
        type: 'tickets_revoked',
        groupId: e.groupId,
        userId: e.userId,
        before: e.before,
        at: e.at,
      };
      toMembers(e.groupId, message, 'a revocation');
    },

    onFileDeleted(e: Extract<TrackerEvent, { kind: 'file_deleted' }>): void {
      if (typeof e.groupId !== 'string' || typeof e.name !== 'string' || !Array.isArray(e.fileIds)) return;
      const message: TrackerMessage = {
        type: 'file_deleted',
        groupId: e.groupId,
        name: e.name,
        fileIds: e.fileIds.filter((f): f is string => typeof f === 'string'),
        at: e.at,
      };
      toMembers(e.groupId, message, 'a deletion');
    },

    afterWelcome(s: S, userId: string): void {
      revocations.recentFor(userId).then(
        (rows) => {
          for (const r of rows) deps.send(s, { type: 'tickets_revoked', ...r, at: r.before * 1000 });
        },
        (err: unknown) => logger.error({ err, userId }, 'cannot replay revocations to a session'),
      );
      deps.deletions?.recentDeletionsFor(userId).then(
        (rows) => {
          for (const r of rows) deps.send(s, { type: 'file_deleted', ...r });
        },
        (err: unknown) => logger.error({ err, userId }, 'cannot replay deletions to a session'),
      );
    },
  };
}
