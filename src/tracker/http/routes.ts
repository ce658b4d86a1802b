import type * as Api from '../../protocol/api.js';
import type { RouteName } from '../../protocol/api.js';
import { CoterieError } from '../../protocol/errors.js';
import type { ClusterService } from '../services/cluster.js';
import type { FileVersionsService } from '../services/file-versions.js';
import type { FilesService } from '../services/files.js';
import type { GroupsService } from '../services/groups.js';
import type { ManifestPagesService } from '../services/manifest-pages.js';
import type { MessagesService } from '../services/messages.js';
import type { QualityService } from '../services/quality.js';
import type { StorageService } from '../services/storage.js';
import type { TicketsService } from '../services/tickets.js';
import type { Caller, UsersService } from '../services/users.js';

export interface TrackerServices {
  users: UsersService;
  groups: GroupsService;
  files: FilesService;
  pages: ManifestPagesService;
  versions: FileVersionsService;
  tickets: TicketsService;
  quality: QualityService;
  messages: MessagesService;
  storage: StorageService;
  cluster: Pick<ClusterService, 'members'> & { relays?: () => string[] };
}

/** A route's input after schema validation: handlers do not see Fastify. */
export interface HandlerInput {
  caller: Caller | null;
  params: Record<string, string>;
  query: Record<string, string>;
  body: unknown;
  ip: string;
}
export interface HandlerResult {
  /** Overrides the route's success status (e.g. 200 instead of 201 when nothing was created). */
  status?: number;
  body: unknown;
  /** The body is already JSON text (matching the route's response schema): send it as is. */
  json?: true;
}
export type Handler = (input: HandlerInput) => Promise<HandlerResult>;

/** `?version=N` (the schema allows digits only, no leading zero), or undefined for the current version. */
function versionOf(input: HandlerInput): number | undefined {
  const v = (input.query as Api.VersionQuery).version;
  return v === undefined ? undefined : Number(v);
}

function who(input: HandlerInput): Caller {
  if (input.caller === null) throw new CoterieError('UNAUTHENTICATED', 'log in first');
  return input.caller;
}

/** One handler per route of ROUTES (src/protocol/api.ts): the mapping from HTTP to services. */
export function createHandlers(s: TrackerServices): Record<RouteName, Handler> {
  return {
    createUser: async ({ body }) => {
      const b = body as Api.CreateUserRequest;
      return { body: await s.users.create(b.userId, b.password) };
    },
    login: async ({ body, ip }) => {
      const b = body as Api.LoginRequest;
      return { body: await s.users.login(b.userId, b.password, ip, b.ttlSeconds) };
    },
    logout: async (i) => {
      await s.users.logout(who(i));
      return { body: { loggedOut: true } satisfies Api.LogoutResponse };
    },
    whoami: async (i) => ({ body: s.users.whoami(who(i)) }),
    createGroup: async (i) => ({
      body: await s.groups.create(who(i).userId, (i.body as Api.CreateGroupRequest).groupId),
    }),
    listGroups: async (i) => ({ body: await s.groups.list(who(i).userId) }),
    joinGroup: async (i) => ({ body: await s.groups.join(who(i).userId, i.params.groupId!) }),
    listRequests: async (i) => ({ body: await s.groups.listRequests(who(i).userId, i.params.groupId!) }),
    acceptRequest: async (i) => ({
      body: await s.groups.decide(who(i).userId, i.params.groupId!, i.params.userId!, true),
    }),
    declineRequest: async (i) => ({
      body: await s.groups.decide(who(i).userId, i.params.groupId!, i.params.userId!, false),
    }),
    listMembers: async (i) => ({ body: await s.groups.members(who(i).userId, i.params.groupId!) }),
    leaveGroup: async (i) => ({ body: await s.groups.leave(who(i).userId, i.params.groupId!) }),
    removeMember: async (i) => ({
      body: await s.groups.removeMember(who(i).userId, i.params.groupId!, i.params.userId!),
    }),
    shareFile: async (i) => {
      const r = await s.files.share(who(i).userId, i.params.groupId!, i.body as Api.ShareRequest);
      return { status: r.created ? 201 : 200, body: r };
    },
    putManifestPage: async (i) => ({ body: await s.pages.put(who(i).userId, i.params.groupId!, i.body) }),
    getManifestPage: async (i) => ({
      json: true,
      body: await s.pages.getJson(who(i).userId, i.params.groupId!, i.params.hash!),
    }),
    listFiles: async (i) => ({
      body: await s.storage.withReplicas(await s.files.list(who(i).userId, i.params.groupId!)),
    }),
    getFile: async (i) => ({
      json: true,
      body: await s.files.getJson(who(i).userId, i.params.groupId!, i.params.file!, versionOf(i)),
    }),
    getSeeders: async (i) => ({
      body: await s.files.seeders(who(i).userId, i.params.groupId!, i.params.file!, versionOf(i)),
    }),
    stopSharing: async (i) => ({
      body: await s.files.stop(who(i).userId, i.params.groupId!, i.params.file!, i.query.peerId),
    }),
    getTicket: async (i) => {
      const b = i.body as Api.TicketRequest;
      return {
        body: await s.tickets.issue(who(i).userId, i.params.groupId!, i.params.file!, b.peerId, {
          ttlMinutes: b.ttlMinutes,
          version: versionOf(i),
        }),
      };
    },
    updateFile: async (i) => {
      const r = await s.versions.update(
        who(i).userId,
        i.params.groupId!,
        i.params.file!,
        i.body as Api.UpdateRequest,
      );
      return { status: r.created ? 201 : 200, body: r };
    },
    listVersions: async (i) => ({
      body: await s.storage.withVersionReplicas(
        await s.versions.versions(who(i).userId, i.params.groupId!, i.params.file!),
      ),
    }),
    deleteFile: async (i) => ({
      body: await s.versions.remove(who(i).userId, i.params.groupId!, i.params.file!),
    }),
    lockFile: async (i) => ({
      body: await s.versions.lock(
        who(i).userId,
        i.params.groupId!,
        i.params.file!,
        i.body as Api.LockRequest,
      ),
    }),
    unlockFile: async (i) => ({
      body: await s.versions.unlock(who(i).userId, i.params.groupId!, i.params.file!),
    }),
    keepVersions: async (i) => ({
      body: await s.versions.keepVersions(
        who(i).userId,
        i.params.groupId!,
        (i.body as Api.KeepVersionsRequest).keep,
      ),
    }),
    clusterKeys: async () => ({ body: s.tickets.keys() }),
    cluster: async () => ({
      body: { trackers: s.cluster.members(), relays: s.cluster.relays?.() ?? [] } satisfies Api.ClusterList,
    }),
    report: async (i) => ({
      body: await s.quality.report(who(i).userId, (i.body as Api.ReportRequest).reports),
    }),
    sendMessage: async (i) => {
      const r = await s.messages.send(who(i).userId, i.body as Api.SendMessageRequest);
      return { status: r.duplicate ? 200 : 201, body: r };
    },
    messageStatus: async (i) => ({ body: await s.messages.status(who(i).userId, i.params.messageId!) }),
    createTopic: async (i) => ({
      body: await s.messages.createTopic(who(i).userId, i.params.groupId!, i.body as Api.CreateTopicRequest),
    }),
    listTopics: async (i) => ({ body: await s.messages.listTopics(who(i).userId, i.params.groupId!) }),
    subscribe: async (i) => ({
      body: await s.messages.subscribe(who(i).userId, i.params.groupId!, i.params.topic!, true),
    }),
    unsubscribe: async (i) => ({
      body: await s.messages.subscribe(who(i).userId, i.params.groupId!, i.params.topic!, false),
    }),
    publish: async (i) => {
      const b = i.body as Api.PublishRequest;
      const r = await s.messages.send(who(i).userId, {
        groupId: i.params.groupId!,
        topic: i.params.topic!,
        clientId: b.clientId,
        body: b.body,
      });
      return { status: r.duplicate ? 200 : 201, body: r };
    },
    offerStorage: async (i) => ({
      body: await s.storage.offer(who(i).userId, i.params.groupId!, i.body as Api.OfferStorageRequest),
    }),
    withdrawStorage: async (i) => ({
      body: await s.storage.withdraw(who(i).userId, i.params.groupId!, i.body as Api.WithdrawStorageRequest),
    }),
    listStorage: async (i) => ({ body: await s.storage.list(who(i).userId, i.params.groupId!) }),
    setReplication: async (i) => ({
      body: await s.storage.setReplication(
        who(i).userId,
        i.params.groupId!,
        i.body as Api.SetReplicationRequest,
      ),
    }),
    fetchMessages: async (i) => {
      const q = i.query as Api.FetchQuery;
      return {
        body: await s.messages.fetch(
          who(i).userId,
          i.params.groupId!,
          i.params.topic!,
          q.from === undefined ? undefined : Number(q.from),
          q.limit === undefined ? undefined : Number(q.limit),
        ),
      };
    },
  };
}
