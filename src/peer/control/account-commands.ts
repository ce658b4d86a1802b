import { basename } from 'node:path';
import type { GroupSummary } from '../../protocol/api.js';
import type { LimitsView, ReachView } from '../../protocol/control.js';
import { CoterieError, type ErrorCode } from '../../protocol/errors.js';
import { PEER_DEFAULTS } from '../config.js';
import type { ChangedShare } from '../files/index.js';
import type { MessageCommands } from '../messages/index.js';
import { shareChangedText } from '../notices.js';
import { checkSourceFile, resolveDestination } from '../paths.js';
import type { StorageCommands, StorageService } from '../storage/index.js';
import type { PeerStore } from '../store/index.js';
import type { TrackerHttpClient } from '../tracker/http-client.js';
import type { TrackerSession } from '../tracker/session.js';
import { advise } from './advice.js';
import type { CommandContext, CommandIO } from './commands.js';

/** What the account and group commands need from the daemon. */
export interface AccountDeps {
  store: PeerStore;
  http: TrackerHttpClient;
  session: TrackerSession;
  peerId: string;
  serving: () => { host: string; port: number };
  /** The peer's reachability (issue 19), when the daemon tracks it. */
  reach?: () => ReachView;
  trackers: readonly string[];
  /** The bandwidth limits and schedule (peer/limits.ts). */
  limits: {
    setLimits(change: Parameters<CommandContext['setLimits']>[0]): LimitsView;
    setSchedule(change: Parameters<CommandContext['setSchedule']>[0]): LimitsView;
    view(): LimitsView;
  };
  /** Starts or stops the tracker session after login/logout. */
  onLogin: () => void;
  onLogout: () => Promise<void>;
  requestShutdown: () => void;
}

/** The part of CommandContext the files module provides. */
export type FileCommands = Pick<
  CommandContext,
  | 'uploadFile'
  | 'updateFile'
  | 'downloadFile'
  | 'selectFiles'
  | 'stopShare'
  | 'showDownloads'
  | 'pauseDownload'
  | 'resumeDownload'
  | 'cancelDownload'
> & {
  /** Files of a group the tracker let go (deleted, or dropped by retention): no longer served there. */
  filesDeleted(groupId: string, fileIds: readonly string[]): Promise<void>;
  /** Drops the local shares of a group the user left. */
  forgetGroup(groupId: string): Promise<void>;
  /** Shares no longer seeded because their file changed since it was shared (status shows them). */
  changedShares(): ChangedShare[];
};

/** The tracker's minimum (api.ts Password), checked here to answer before a round trip. */
const MIN_PASSWORD_LENGTH = PEER_DEFAULTS.passwordMinLength;

export function createCommandContext(
  deps: AccountDeps,
  files: FileCommands,
  messaging: MessageCommands,
  storage: StorageCommands & Pick<StorageService, 'status'>,
): CommandContext {
  const { store, http } = deps;

  const requireLogin = (): string => {
    const s = store.getSession();
    if (s === undefined)
      throw new CoterieError('NOT_LOGGED_IN', "not logged in: run 'login <user_id> <password>' first");
    return s.userId;
  };

  /** Looks up a group's owner to make an error advise whom to ask; silent when it cannot. */
  const ownerOf = async (groupId: string): Promise<string | undefined> => {
    try {
      const { groups } = await http.call('listGroups');
      return groups.find((g: GroupSummary) => g.groupId === groupId)?.owner;
    } catch {
      return undefined;
    }
  };

  /** Runs a group call, turning its errors into advice. */
  const groupCall = async <T>(
    groupId: string,
    fn: () => Promise<T>,
    extra: { userId?: string; action?: string; fileName?: string; keep?: ErrorCode } = {},
  ): Promise<T> => {
    requireLogin();
    try {
      return await fn();
    } catch (err) {
      // An error about someone else than the caller (remove_member's NOT_A_MEMBER) says so already.
      if (err instanceof CoterieError && err.code === extra.keep) throw err;
      if (err instanceof CoterieError && (err.code === 'NOT_A_MEMBER' || err.code === 'NOT_OWNER')) {
        throw advise(err, { groupId, owner: await ownerOf(groupId), ...extra });
      }
      throw advise(err, { groupId, ...extra });
    }
  };

  const ctx: CommandContext = {
    async status() {
      const s = store.getSession();
      return {
        peerId: deps.peerId,
        serving: deps.serving(),
        userId: s?.userId ?? null,
        tracker: deps.session.url ?? null,
        session: deps.session.state,
        trackers: deps.trackers,
        changedShares: files.changedShares().flatMap((c) =>
          c.fileNames.map((fileName) => ({
            fileName,
            path: c.path,
            reason: c.reason,
            message: shareChangedText(fileName),
          })),
        ),
        ...(storage.status() === undefined ? {} : { storage: storage.status() }),
        ...(deps.reach === undefined ? {} : { reach: deps.reach() }),
        limits: deps.limits.view(),
      };
    },
    async createUser(userId, password) {
      if (password.length < MIN_PASSWORD_LENGTH) {
        throw new CoterieError(
          'USAGE',
          `the password is too short: use at least ${MIN_PASSWORD_LENGTH} characters`,
        );
      }
      try {
        return await http.call('createUser', { body: { userId, password } });
      } catch (err) {
        throw advise(err, { userId });
      }
    },
    async login(userId, password) {
      let res: Awaited<ReturnType<typeof http.call<'login'>>>;
      try {
        res = await http.call('login', { body: { userId, password } });
      } catch (err) {
        throw advise(err, { userId });
      }
      const previous = store.getSession();
      if (previous !== undefined && previous.userId !== userId) await deps.onLogout();
      store.setSession({ userId: res.userId, token: res.token });
      deps.onLogin();
      return { userId: res.userId, expiresAt: res.expiresAt };
    },
    async logout() {
      const s = store.getSession();
      if (s === undefined) throw new CoterieError('NOT_LOGGED_IN', 'not logged in');
      try {
        await http.call('logout');
      } catch {
        // the local logout happens whatever the tracker says: the token is forgotten here
      }
      await deps.onLogout();
      store.setSession(undefined);
      return { userId: s.userId };
    },
    createGroup: (groupId) => groupCall(groupId, () => http.call('createGroup', { body: { groupId } })),
    joinGroup: (groupId) => groupCall(groupId, () => http.call('joinGroup', { params: { groupId } })),
    leaveGroup: async (groupId) => {
      const res = await groupCall(groupId, () => http.call('leaveGroup', { params: { groupId } }));
      // Out of the group, out of its swarm: our shares there end with the membership.
      await files.forgetGroup(groupId);
      return res;
    },
    async listGroups() {
      requireLogin();
      return advise_(() => http.call('listGroups'));
    },
    listRequests: (groupId) =>
      groupCall(groupId, () => http.call('listRequests', { params: { groupId } }), {
        action: 'see join requests',
      }),
    acceptRequest: (groupId, userId) =>
      groupCall(groupId, () => http.call('acceptRequest', { params: { groupId, userId } }), {
        userId,
        action: 'accept join requests',
      }),
    declineRequest: (groupId, userId) =>
      groupCall(groupId, () => http.call('declineRequest', { params: { groupId, userId } }), {
        userId,
        action: 'decline join requests',
      }),
    removeMember: (groupId, userId) =>
      groupCall(groupId, () => http.call('removeMember', { params: { groupId, userId } }), {
        userId,
        action: 'remove members',
        keep: 'NOT_A_MEMBER',
      }),
    listMembers: (groupId) => groupCall(groupId, () => http.call('listMembers', { params: { groupId } })),
    listFiles: (groupId, fileName) =>
      groupCall(
        groupId,
        async () =>
          fileName === undefined
            ? http.call('listFiles', { params: { groupId } })
            : // Loaded here, not at the top: `coterie <command>` imports this module and must stay light.
              (async (f) => f.fileTreeOf(await f.getFileDetail(http, { groupId, file: fileName })))(
                await import('../files/index.js'),
              ),
        fileName === undefined ? {} : { fileName },
      ),
    selectFiles: (groupId, fileName, globs) =>
      groupCall(groupId, () => files.selectFiles(groupId, fileName, globs), { fileName }),
    uploadFile: (path: string, groupId: string, io: CommandIO) => {
      checkSourceFile(path, { folders: true });
      return groupCall(groupId, () => files.uploadFile(path, groupId, io), {
        action: 'share files',
        fileName: basename(path),
      });
    },
    downloadFile: (groupId, fileName, dest, options) => {
      resolveDestination(dest, fileName);
      return groupCall(groupId, () => files.downloadFile(groupId, fileName, dest, options), { fileName });
    },
    updateFile: (groupId, fileName, path, ifVersion, io) => {
      checkSourceFile(path);
      return groupCall(groupId, () => files.updateFile(groupId, fileName, path, ifVersion, io), {
        action: 'share files',
        fileName,
      });
    },
    deleteFile: (groupId, fileName) =>
      groupCall(
        groupId,
        async () => {
          const res = await http.call('deleteFile', { params: { groupId, file: fileName } });
          // At once, not at the session's push: this peer stops seeding what it just deleted.
          await files.filesDeleted(groupId, res.fileIds);
          return res;
        },
        { fileName },
      ),
    lockFile: (groupId, fileName, ttlSeconds) =>
      groupCall(
        groupId,
        () =>
          http
            .call('lockFile', {
              params: { groupId, file: fileName },
              // Bound to this peer: the lock also ends within two heartbeats of this daemon dying.
              body: { peerId: deps.peerId, ...(ttlSeconds === undefined ? {} : { ttlSeconds }) },
            })
            .catch((err: unknown) => {
              if (!(err instanceof CoterieError && err.code === 'NOT_FOUND')) throw err;
              throw new CoterieError(
                'NOT_FOUND',
                "this peer has no session with a tracker yet ('status' shows it): a lock ends with the peer that holds it, so it needs one; retry once connected",
                { cause: err },
              );
            }),
        { fileName },
      ),
    unlockFile: (groupId, fileName) =>
      groupCall(groupId, () => http.call('unlockFile', { params: { groupId, file: fileName } }), {
        fileName,
      }),
    listVersions: (groupId, fileName) =>
      groupCall(groupId, () => http.call('listVersions', { params: { groupId, file: fileName } }), {
        fileName,
      }),
    setVersions: (groupId, keep) =>
      groupCall(
        groupId,
        async () => {
          const res = await http.call('keepVersions', { params: { groupId }, body: { keep } });
          await files.filesDeleted(groupId, res.dropped);
          return res;
        },
        { action: 'set how many versions are kept' },
      ),
    stopShare: (fileName, groupId) => {
      requireLogin();
      return files.stopShare(fileName, groupId);
    },
    showDownloads: (download) => files.showDownloads(download),
    pauseDownload: async (download) => {
      requireLogin();
      return files.pauseDownload(download);
    },
    resumeDownload: async (download) => {
      requireLogin();
      return files.resumeDownload(download);
    },
    cancelDownload: async (download) => {
      requireLogin();
      return files.cancelDownload(download);
    },
    sendMessage: (target, text) =>
      'to' in target
        ? advise_(async () => {
            requireLogin();
            return messaging.sendMessage(target, text);
          })
        : groupCall(target.groupId, () => messaging.sendMessage(target, text), { action: 'send messages' }),
    async showMessages(filter) {
      requireLogin();
      return messaging.showMessages(filter);
    },
    async markRead(messageId) {
      requireLogin();
      return messaging.markRead(messageId);
    },
    async showSent(filter) {
      requireLogin();
      return messaging.showSent(filter);
    },
    messageStatus: (messageId) =>
      advise_(async () => {
        requireLogin();
        return messaging.messageStatus(messageId);
      }),
    createTopic: (groupId, topic) => groupCall(groupId, () => messaging.createTopic(groupId, topic)),
    listTopics: (groupId) => groupCall(groupId, () => messaging.listTopics(groupId)),
    subscribe: (groupId, topic, on) => groupCall(groupId, () => messaging.subscribe(groupId, topic, on)),
    fetchMessages: (groupId, topic, from, limit) =>
      groupCall(groupId, () => messaging.fetchMessages(groupId, topic, from, limit)),
    offerStorage: (groupId, quotaBytes) =>
      groupCall(groupId, () => storage.offerStorage(groupId, quotaBytes), { action: 'offer storage' }),
    withdrawStorage: (groupId, now) => groupCall(groupId, () => storage.withdrawStorage(groupId, now)),
    setReplication: (groupId, min, max) =>
      groupCall(groupId, () => storage.setReplication(groupId, min, max), { action: 'set its replication' }),
    listStorage: (groupId) => groupCall(groupId, () => storage.listStorage(groupId)),
    setLimits: async (change) => deps.limits.setLimits(change),
    setSchedule: async (change) => deps.limits.setSchedule(change),
    showLimits: async () => deps.limits.view(),
    async quit() {
      deps.requestShutdown();
      return { stopping: true };
    },
  };
  return ctx;
}

async function advise_<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw advise(err, {});
  }
}
