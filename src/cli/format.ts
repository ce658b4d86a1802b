import { formatBytes } from '../core/bytes.js';
import type {
  CommandName,
  DownloadView,
  FileTree,
  ResultOf,
  SendAnswer,
  ShowDownloadsResult,
  ShowMessagesResult,
  ShowSentResult,
  StatusView,
} from '../peer/client.js';
import { formatHostPort } from '../protocol/addresses.js';
import { replicasText, seedersText } from '../protocol/replica-text.js';
import { formatDownloadDetail } from './format-download-detail.js';
import { formatLimits, limitsLine } from './format-limits.js';
import { shown, shownBody, shownDeep } from './sanitize.js';
import { table } from './text-table.js';

/** How `status` names a port mapping's protocol. */
const MAPPING_PROTOCOLS = { upnp: 'UPnP', natpmp: 'NAT-PMP', pcp: 'PCP' } as const;

export { table };

/**
 * Human-readable answers of each command; `--json` bypasses this. Every
 * string of an answer is shown escaped (cli/sanitize.ts) before a formatter
 * sees it: names and bodies come from other users.
 */

// The peer's error messages size things the same way (core/bytes.ts).
export { formatBytes };

/** "1 peer", "3 peers". */
export function countOf(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

export function formatRate(bytesPerSec: number): string {
  return `${formatBytes(Math.round(bytesPerSec))}/s`;
}

function formatDuration(ms: number): string {
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - m * 60)} s`;
}

function percent(d: DownloadView): string {
  return d.size === 0 ? '100%' : `${Math.floor((d.doneBytes / d.size) * 100)}%`;
}

export function formatContributions(d: DownloadView): string {
  const contributions = d.contributions ?? [];
  if (contributions.length === 0) return '';
  const total = contributions.reduce((n, c) => n + c.pieces, 0) || 1;
  return table(
    ['PEER', 'USER', 'PIECES', 'SHARE', 'BYTES'],
    contributions.map((c) => [
      c.peerId.slice(0, 12),
      c.userId ?? '?',
      String(c.pieces),
      `${((c.pieces / total) * 100).toFixed(1)}%`,
      formatBytes(c.bytes),
    ]),
  );
}

export function formatDownloadDone(d: DownloadView): string {
  const took = (d.endedAt ?? Date.now()) - d.startedAt;
  const head = `downloaded '${d.fileName}' to ${d.dest}: ${formatBytes(d.size)} in ${formatDuration(took)} (${formatRate(d.rateBytesPerSec)}) from ${countOf(d.peers, 'peer')}`;
  const dist = formatContributions(d);
  return dist === '' ? head : `${head}\n${dist}`;
}

function formatDownloads(r: ShowDownloadsResult): string {
  if (r.detail !== undefined) return `${formatDownloadList(r)}\n${formatDownloadDetail(r.detail)}`;
  return formatDownloadList(r);
}

function formatDownloadList(r: ShowDownloadsResult): string {
  if (r.downloads.length === 0) return 'no downloads';
  const section = (
    title: string,
    items: DownloadView[],
    row: (d: DownloadView) => string[],
    header: string[],
  ) => (items.length === 0 ? [] : [`${title}:`, table(header, items.map(row))]);
  const active = r.downloads.filter((d) => ['active', 'paused', 'waiting'].includes(d.state));
  const done = r.downloads.filter((d) => d.state === 'completed');
  const failed = r.downloads.filter((d) => d.state === 'failed' || d.state === 'cancelled');
  const rateOf = (d: DownloadView) =>
    d.state === 'active'
      ? formatRate(d.rateBytesPerSec)
      : d.state === 'waiting'
        ? 'waiting for seeders'
        : d.state;
  return [
    ...section(
      'ongoing',
      active,
      (d) => [`[D] ${d.groupId}`, `#${d.id}`, d.fileName, percent(d), rateOf(d), String(d.peers), d.dest],
      ['GROUP', 'ID', 'FILE', 'DONE', 'RATE', 'PEERS', 'DEST'],
    ),
    ...section(
      'completed',
      done,
      (d) => [
        `[C] ${d.groupId}`,
        `#${d.id}`,
        d.fileName,
        formatBytes(d.size),
        formatRate(d.rateBytesPerSec),
        d.dest,
      ],
      ['GROUP', 'ID', 'FILE', 'SIZE', 'RATE', 'DEST'],
    ),
    ...section(
      'failed',
      failed,
      (d) => [
        `[F] ${d.groupId}`,
        `#${d.id}`,
        d.fileName,
        percent(d),
        d.state === 'cancelled' ? 'cancelled' : (d.error ?? 'unknown reason'),
      ],
      ['GROUP', 'ID', 'FILE', 'DONE', 'REASON'],
    ),
  ].join('\n');
}

/** Copies on their way: repairs (files below min) and moves (off withdrawing peers); '' when none. */
function progressText(h: { repairing?: number; moving?: number }): string {
  const parts = [
    ...(h.repairing ? [`${countOf(h.repairing, 'file')} being repaired to min`] : []),
    ...(h.moving ? [`${countOf(h.moving, 'file')} being moved off withdrawing peers`] : []),
  ];
  return parts.length === 0 ? '' : `; ${parts.join(', ')}`;
}

function formatStorage(r: ResultOf<'list_storage'>): string {
  const { replication: h } = r;
  const head = `replication in '${r.groupId}': min ${h.min}, max ${h.max}; ${countOf(h.storagePeers, 'storage peer')}, ${countOf(h.underReplicatedFiles, 'file')} under-replicated${progressText(h)}`;
  const rows = r.peers.map((p) => [
    p.userId,
    p.peerId.slice(0, 12),
    p.zone === '' ? '-' : p.zone,
    formatBytes(p.quotaBytes),
    formatBytes(p.usedBytes),
    `${p.replicasHeld}${p.replicasAssigned > 0 ? ` (+${p.replicasAssigned})` : ''}`,
    p.withdrawing ? `${p.state}, withdrawing` : p.state,
    clock(p.lastHeartbeatAt),
  ]);
  return [
    head,
    ...(h.warning === undefined ? [] : [`warning: ${h.warning}`]),
    ...(rows.length === 0
      ? [`no storage peers: offer_storage ${r.groupId} <quota> on a peer offers one`]
      : [table(['USER', 'PEER', 'ZONE', 'QUOTA', 'USED', 'HELD', 'STATE', 'LAST HEARTBEAT'], rows)]),
  ].join('\n');
}

function storageLines(s: StatusView['storage']): string[] {
  if (s === undefined) return [];
  return [
    `storage: ${countOf(s.replicas, 'replica')} held (${formatBytes(s.bytes)}) for ${s.offers.map((o) => `'${o.groupId}' (${formatBytes(o.quotaBytes)})`).join(', ') || 'no offer'}`,
    ...s.fetching.map(
      (f) =>
        `  fetching ${f.fileId.slice(0, 12)} for '${f.groupId}': ${formatBytes(f.doneBytes)} of ${formatBytes(f.size)}`,
    ),
    ...(s.scrub === undefined
      ? []
      : [
          `  scrub: ${countOf(s.scrub.passes, 'pass')} done${s.scrub.checking === null ? '' : `, checking ${s.scrub.checking.slice(0, 40)}`}`,
        ]),
  ];
}

function clock(ms: number): string {
  const d = new Date(ms);
  const today = new Date();
  const hhmm = d.toTimeString().slice(0, 8);
  return d.toDateString() === today.toDateString() ? hhmm : `${d.toISOString().slice(0, 10)} ${hhmm}`;
}

/** A version's verified replicas: how many, and how many of them are on storage peers in their grace. */
function versionReplicas(rs: { state: string }[]): string {
  const away = rs.filter((r) => r.state !== 'live').length;
  return `${rs.length}${away > 0 ? ` (${away} in grace)` : ''}`;
}

/** list_files <g> <name>: the share's files with their sizes (`*`: executable), then the total. */
function formatTree(r: FileTree): string {
  const rows = r.files.map((f) => [formatBytes(f.size), f.executable === true ? `${f.path}*` : f.path]);
  const what = r.folder ? `folder '${r.name}'` : `file '${r.name}'`;
  return `${table(['SIZE', 'PATH'], rows)}\n${what} in '${r.groupId}': ${r.files.length} file${r.files.length === 1 ? '' : 's'}, ${formatBytes(r.size)} (${r.fileId.slice(0, 12)})`;
}

function formatVersions(r: ResultOf<'list_versions'>): string {
  const lock = r.lock === undefined ? [] : [`locked by '${r.lock.holder}' until ${clock(r.lock.expiresAt)}`];
  return [
    `'${r.name}' in '${r.groupId}': version ${r.currentVersion} is current; the group keeps ${r.keep}`,
    ...lock,
    table(
      ['VERSION', 'SIZE', 'AUTHOR', 'CREATED', 'REPLICAS', 'FILE ID'],
      r.versions.map((v) => [
        `v${v.version}${v.version === r.currentVersion ? ' *' : ''}`,
        formatBytes(v.size),
        v.author,
        clock(v.createdAt),
        v.replicas === undefined ? '-' : versionReplicas(v.replicas),
        v.fileId.slice(0, 12),
      ]),
    ),
  ].join('\n');
}

/** What starts the second and later lines of a body: never a message line's mark and clock. */
const CONTINUED = '    | ';

function formatMessages(r: ShowMessagesResult, args: string[]): string {
  if (r.messages.length === 0) return 'no messages';
  const lines = r.messages
    .map((m) => {
      const where =
        m.kind === 'direct'
          ? m.sender
          : m.kind === 'group'
            ? `${m.groupId}/${m.sender}`
            : `${m.groupId}:${m.topic}/${m.sender}`;
      const mark = m.readAt === null ? '*' : ' ';
      return `${mark}${clock(m.sentAt)}  [${where}] ${shownBody(m.body, CONTINUED)}`;
    })
    .join('\n');
  const more = r.unreadLeft ?? 0;
  return more > 0
    ? `${lines}\n… ${more} more unread: ${shown(['show_messages', ...args].join(' '))} again`
    : lines;
}

/** show_sent: newest first, one line each with its mark (for a group, who has it and who read it). */
function formatSent(r: ShowSentResult): string {
  if (r.messages.length === 0) return 'no messages sent';
  return r.messages
    .map((m) => {
      const where = m.kind === 'direct' ? `to ${m.to}` : `to ${m.groupId}`;
      const who =
        m.kind === 'group' && m.readBy.length + m.deliveredTo.length > 0
          ? ` (read by ${m.readBy.length}, delivered to ${m.deliveredTo.length})`
          : '';
      return `${clock(m.sentAt)}  [${where}] ${m.mark}${who}: ${shownBody(m.body, CONTINUED)}`;
    })
    .join('\n');
}

function sentLine(r: SendAnswer): string {
  const where =
    r.to !== undefined
      ? `to '${r.to}'`
      : r.topic !== undefined
        ? `to ${r.groupId}:${r.topic}`
        : `to group '${r.groupId}'`;
  if (r.state === 'pending') return `queued, will be sent when a tracker answers (${where})`;
  return `${r.id}  (sent ${where}, #${r.seq}${r.duplicate ? ', already stored' : ''})`;
}

/** The formatter of command K reads K's result (protocol/control.ts), checked by the compiler. */
type Formatters = { [K in CommandName]?: (result: ResultOf<K>, args: string[]) => string };

const FORMATTERS: Formatters = {
  create_user: (r) => `created user '${r.userId}': now 'login ${r.userId} <password>'`,
  login: (r) => `logged in as '${r.userId}'`,
  logout: (r) => `logged out '${r.userId}'`,
  create_group: (r) => `created group '${r.groupId}' (you own it)`,
  join_group: (r) => `asked to join '${r.groupId}': its owner '${r.owner}' must accept`,
  leave_group: (r) =>
    r.deleted
      ? `left '${r.groupId}'; it had no members left and is gone`
      : `left '${r.groupId}' (owner: '${r.owner ?? '?'}')`,
  list_groups: (r) =>
    r.groups.length === 0
      ? 'no groups yet: create_group <group_id> makes one'
      : table(
          ['GROUP', 'OWNER', 'MEMBERS', 'YOU'],
          r.groups.map((g) => [g.groupId, g.owner, String(g.memberCount), g.standing]),
        ),
  list_requests: (r) =>
    r.requests.length === 0
      ? `no pending requests for '${r.groupId}'`
      : r.requests.map((q) => q.userId).join('\n'),
  accept_request: (r) => `'${r.userId}' is now a member of '${r.groupId}'`,
  decline_request: (r) => `declined the request of '${r.userId}' to join '${r.groupId}'`,
  remove_member: (r) => `removed '${r.userId}' from '${r.groupId}'; their tickets are revoked`,
  list_members: (r) =>
    r.members.map((m) => (m.role === 'owner' ? `${m.userId} (owner)` : m.userId)).join('\n'),
  list_files: (r) =>
    'folder' in r
      ? formatTree(r)
      : r.files.length === 0
        ? `no files in '${r.groupId}' yet: upload_file <path> ${r.groupId} shares one`
        : table(
            ['NAME', 'VERSION', 'SIZE', 'SEEDERS', 'REPLICAS', 'SHARED BY', 'LOCKED BY', 'FILE ID'],
            r.files.map((f) => [
              f.name,
              f.version === undefined ? '-' : `v${f.version}`,
              formatBytes(f.size),
              seedersText(f),
              replicasText(f.replicas),
              f.sharers.join(','),
              f.lock === undefined ? '-' : `${f.lock.holder} until ${clock(f.lock.expiresAt)}`,
              f.fileId.slice(0, 12),
            ]),
          ),
  upload_file: (r) =>
    `sharing ${r.files === undefined ? '' : `folder `}'${r.fileName}' (${r.files === undefined ? '' : `${countOf(r.files, 'file')}, `}${formatBytes(r.size)}, ${r.pieces} pieces) in '${r.groupId}' as ${r.fileId.slice(0, 12)}; seeding`,
  select_files: (r) =>
    `'${r.fileName}' from '${r.groupId}' now fetches ${formatBytes(r.size)} into ${r.dest}: show_downloads follows it`,
  download_file: (r) => {
    if (r.state === 'completed') return formatDownloadDone(r);
    if (r.state === 'waiting')
      return `download #${r.id} of '${r.fileName}' from '${r.groupId}' waits for seeders: it starts when one is online (show_downloads follows it)`;
    return `downloading '${r.fileName}' from '${r.groupId}' to ${r.dest}: show_downloads follows it`;
  },
  update_file: (r) =>
    r.created
      ? `'${r.fileName}' in '${r.groupId}' is now version ${r.version} (${formatBytes(r.size)}, ${countOf(r.pieces, 'piece')}) as ${r.fileId.slice(0, 12)}; seeding${r.dropped.length === 0 ? '' : `; ${countOf(r.dropped.length, 'old version')} dropped by the group's retention`}`
      : `'${r.fileName}' in '${r.groupId}' already is this content (version ${r.version}); seeding`,
  delete_file: (r) =>
    `deleted '${r.name}' from '${r.groupId}' (${countOf(r.fileIds.length, 'version')}); its seeders stop serving it`,
  lock_file: (r) =>
    `locked '${r.name}' in '${r.groupId}' until ${clock(r.expiresAt)}: updates and deletes by others are refused until unlock_file, then, or this peer stops`,
  unlock_file: (r) =>
    r.released ? `unlocked '${r.name}' in '${r.groupId}'` : `'${r.name}' in '${r.groupId}' was not locked`,
  list_versions: formatVersions,
  set_versions: (r) =>
    `'${r.groupId}' keeps ${countOf(r.keep, 'version')} of each file${r.dropped.length === 0 ? '' : `; ${countOf(r.dropped.length, 'old version')} dropped`}`,
  stop_share: (r) => r.stopped.map((s) => `stopped sharing '${s.fileName}' in '${s.groupId}'`).join('\n'),
  show_downloads: formatDownloads,
  pause_download: (r) => `download #${r.id} of '${r.fileName}' is ${r.state}`,
  resume_download: (r) =>
    `download #${r.id} of '${r.fileName}' is ${r.state === 'waiting' ? 'waiting for seeders' : r.state}`,
  cancel_download: (r) =>
    `download #${r.id} of '${r.fileName}' is ${r.state}; its part file and resume state are removed`,
  status: (r) =>
    [
      `peer ${r.peerId} serving on ${formatHostPort(r.serving.host, r.serving.port)}`,
      `user: ${r.userId ?? '(not logged in)'}`,
      `tracker: ${r.tracker ?? `(${r.session})`}`,
      ...reachLines(r.reach),
      ...(r.changedShares ?? []).map((c) => `not seeding: ${c.message}`),
      ...storageLines(r.storage),
      ...(r.limits === undefined ? [] : [limitsLine(r.limits)]),
    ].join('\n'),
  offer_storage: (r) =>
    `offered ${formatBytes(r.quotaBytes)} to '${r.groupId}'${r.zone === '' ? '' : ` in zone '${r.zone}'`}: this peer keeps replicas the tracker assigns`,
  withdraw_storage: (r) =>
    r.ended
      ? `withdrew storage from '${r.groupId}' at once: its replicas are dropped and repaired elsewhere`
      : `withdrawing storage from '${r.groupId}': replicas are dropped once they live elsewhere`,
  set_replication: (r) =>
    [
      `'${r.groupId}' keeps ${r.min === r.max ? r.min : `${r.min} to ${r.max}`} replicas of each file (${countOf(r.storagePeers, 'storage peer')})${progressText(r)}`,
      ...(r.warning === undefined ? [] : [`warning: ${r.warning}`]),
    ].join('\n'),
  list_storage: formatStorage,
  set_limits: formatLimits,
  set_schedule: formatLimits,
  show_limits: formatLimits,
  quit: () => 'the peer is stopping',
  send_msg: sentLine,
  send_group_msg: sentLine,
  publish: sentLine,
  show_messages: formatMessages,
  show_sent: formatSent,
  mark_read: (r) => `read up to #${r.seq} of ${r.streamId}`,
  message_status: (r) =>
    [
      `${r.messageId}: ${r.state} (${r.kind} #${r.seq} from '${r.sender}' at ${clock(r.sentAt)})`,
      ...(r.recipients.length > 1 || r.kind !== 'direct'
        ? [
            table(
              ['RECIPIENT', 'STATE'],
              r.recipients.map((x) => [x.userId, x.state]),
            ),
          ]
        : []),
    ].join('\n'),
  create_topic: (r) =>
    `created topic '${r.topic}' in '${r.groupId}' (keeps ${r.retentionCount} messages or ${Math.round(r.retentionMs / 86_400_000)} days): subscribe ${r.groupId} ${r.topic}`,
  list_topics: (r) =>
    r.topics.length === 0
      ? `no topics in '${r.groupId}' yet: create_topic ${r.groupId} <topic> makes one`
      : table(
          ['TOPIC', 'MESSAGES', 'SUBSCRIBED', 'CREATED BY'],
          r.topics.map((t) => [t.topic, String(t.lastSeq), t.subscribed ? 'yes' : 'no', t.createdBy]),
        ),
  subscribe: (r) => `subscribed to ${r.groupId}:${r.topic}: new messages are pushed to you`,
  unsubscribe: (r) => `unsubscribed from ${r.groupId}:${r.topic}`,
  fetch_messages: (r) =>
    r.messages.length === 0
      ? `no messages in ${r.groupId}:${r.topic} from there (kept: #${r.firstSeq}…#${r.lastSeq})`
      : [
          ...r.messages.map(
            (m) => `#${m.seq}  ${clock(m.sentAt)}  ${m.sender}: ${shownBody(m.body, CONTINUED)}`,
          ),
          ...(r.nextSeq <= r.lastSeq
            ? [`more: fetch_messages ${r.groupId} ${r.topic} --from ${r.nextSeq}`]
            : []),
        ].join('\n'),
};

export function formatResult(name: string, result: unknown, args: string[] = []): string {
  const f = FORMATTERS[name as CommandName];
  if (f === undefined) return JSON.stringify(shownDeep(result), null, 2);
  // The daemon answered command `name` with its result; shownDeep keeps the shape.
  return (f as (r: unknown, a: string[]) => string)(shownDeep(result), args);
}

/** status's reachability line: direct at an address, or behind NAT through a relay. */
function reachLines(reach: StatusView['reach']): string[] {
  if (reach === undefined) return [];
  const m = reach.mapping;
  const mapped =
    m === undefined
      ? []
      : [
          `port mapping: ${shown(m.external)} → ${shown(m.internal)} by ${MAPPING_PROTOCOLS[m.protocol]}, lease ${m.leaseSec} s, renewed ${m.renewals}×, ends ${new Date(m.expiresAt).toISOString()}`,
        ];
  return [...reachLine(reach), ...mapped];
}

function reachLine(reach: NonNullable<StatusView['reach']>): string[] {
  if (reach.reachable === 'direct') return [`reachable: direct at ${shown(reach.address ?? '?')}`];
  if (reach.reachable === 'unknown') return ['reachable: unknown (no tracker said yet)'];
  return [
    `reachable: nat, ${reach.relay === undefined ? 'no relay reservation yet' : `relayed by ${shown(reach.relay)}`}${reach.udp === undefined ? '' : `, punches from UDP ${shown(reach.udp)}`}`,
  ];
}
