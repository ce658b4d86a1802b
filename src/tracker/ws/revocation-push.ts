import type { Logger } from 'pino';
import type { TrackerMessage } from '../../protocol/session.js';
import type { TrackerEvent } from '../events/index.js';
import type { RevocationsService } from '../services/revocations.js';

export interface RevocationPushDeps<S> {
  revocations: Pick<RevocationsService, 'recipients' | 'recentFor'>;
  /** This tracker's sessions of a user that said hello. */
  sessionsOf(userId: string): Iterable<S>;
  send(s: S, message: TrackerMessage): void;
  logger: Logger;
}

export interface RevocationPush<S> {
  /** A revocation heard on the bus: pushed to this tracker's sessions of the group's members. */
  onEvent(e: Extract<TrackerEvent, { kind: 'tickets_revoked' }>): void;
  /** A session said hello: it gets the recent revocations of its user's groups. */
  afterWelcome(s: S, userId: string): void;
}

/**
 * Tells seeders of ticket revocations (services/revocations.ts): a revocation
 * heard on the bus goes to this tracker's sessions of the group's members, and
 * a session that says hello gets the recent ones of its user's groups (its
 * peer may have missed them while it had no session).
 */
export function createRevocationPush<S>(deps: RevocationPushDeps<S>): RevocationPush<S> {
  const { revocations, logger } = deps;
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
      revocations.recipients(e.groupId).then(
        (users) => {
          for (const u of users) for (const s of deps.sessionsOf(u)) deps.send(s, message);
        },
        (err: unknown) => logger.error({ err, groupId: e.groupId }, 'cannot tell seeders of a revocation'),
      );
    },

    afterWelcome(s: S, userId: string): void {
      revocations.recentFor(userId).then(
        (rows) => {
          for (const r of rows) deps.send(s, { type: 'tickets_revoked', ...r, at: r.before * 1000 });
        },
        (err: unknown) => logger.error({ err, userId }, 'cannot replay revocations to a session'),
      );
    },
  };
}
