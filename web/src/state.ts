import { signal } from '@preact/signals';
import type { UiFrame } from '../../src/peer/ui/frames.js';
import type { GroupSummary, StoredMessage } from '../../src/protocol/api.js';
import {
  type DownloadView,
  type InboxMessage,
  inboxFields,
  type SentMessage,
  type StatusView,
} from '../../src/protocol/control.js';
import { type TransferProgress, withProgress } from '../../src/protocol/peer-events.js';

/** What the page knows, as signals: a frame of the event stream updates only what shows it. */
export const connected = signal(false);
export const status = signal<StatusView | null>(null);
export const downloads = signal<DownloadView[]>([]);
/** The last progress of each download this page saw run (its peers and piece map), by id. */
export const transfers = signal<ReadonlyMap<number, TransferProgress>>(new Map());
export const groups = signal<GroupSummary[]>([]);
export const currentGroup = signal<string | null>(null);
export const inbox = signal<InboxMessage[]>([]);
/** The last daemon events, newest first (the overview's feed). */
export const feed = signal<{ seq: number; text: string }[]>([]);
/** Bumped when the tracker says a group changed for us (a request, an answer): group views reload. */
export const groupsChanged = signal(0);
/** Topic messages pushed since the page opened, newest last. */
export const topicFeed = signal<StoredMessage[]>([]);

export type Mark = SentMessage['mark'];

/** What this user sent (show_sent, then messageSent events), newest first; marks move as receipts arrive. */
export const sent = signal<SentMessage[]>([]);

const RANK: Record<Mark, number> = { pending: 0, sent: 1, delivered: 2, read: 3 };

function advance(entry: SentMessage, mark: Mark): SentMessage {
  return RANK[mark] > RANK[entry.mark] ? { ...entry, mark } : entry;
}

export function setMark(id: string, mark: Mark): void {
  sent.value = sent.value.map((e) => (e.messageId === id ? advance(e, mark) : e));
}

/** A send seen again (pending, then sent): one entry per client id, its mark never moving back. */
export function upsertSent(m: SentMessage): void {
  const old = sent.value.find((e) => e.clientId === m.clientId);
  const entry = old === undefined ? m : advance({ ...m, mark: old.mark }, m.mark);
  sent.value = [entry, ...sent.value.filter((e) => e.clientId !== m.clientId)].sort(
    (a, b) => b.sentAt - a.sentAt,
  );
}

function describe(frame: Extract<UiFrame, { kind: 'event' }>): string {
  const e = frame.event;
  switch (e.type) {
    case 'trackerConnected':
      return `connected to tracker ${e.url}`;
    case 'trackerLost':
      return `lost tracker ${e.url} (${e.reason})`;
    case 'downloadCompleted':
      return `downloaded ${e.fileName} to ${e.dest}`;
    case 'downloadFailed':
      return `download of ${e.fileName} failed: ${e.reason}`;
    case 'messageReceived':
      return `message from ${e.message.sender}`;
    case 'trackerEvent':
      return `${e.event.type.replace(/_/g, ' ')}`;
    default:
      return e.type;
  }
}

/** A download's progress: its peers and piece map, and its row of the table (percent, rate, peers). */
function applyProgress(p: TransferProgress): void {
  transfers.value = new Map(transfers.value).set(p.id, p);
  downloads.value = withProgress(downloads.value, p);
}

/** Applies one frame of the event stream. */
export function applyFrame(frame: UiFrame): void {
  if (frame.kind === 'snapshot') {
    status.value = frame.status;
    downloads.value = frame.downloads;
    for (const p of frame.transfers) applyProgress(p);
    return;
  }
  if (frame.kind === 'downloads') {
    downloads.value = frame.downloads;
    return;
  }
  if (frame.kind === 'live') {
    if (frame.event.type === 'downloadProgress') applyProgress(frame.event.progress);
    return;
  }
  const e = frame.event;
  feed.value = [{ seq: frame.seq, text: `#${frame.seq} ${describe(frame)}` }, ...feed.value].slice(0, 50);
  if (e.type === 'receipt') {
    sent.value = sent.value.map((s) =>
      s.streamId !== e.streamId || s.seq === null
        ? s
        : advance(s, s.seq <= e.read ? 'read' : s.seq <= e.delivered ? 'delivered' : s.mark),
    );
  } else if (e.type === 'messageSent') {
    upsertSent(e.message);
  } else if (e.type === 'messageReceived') {
    const m = e.message;
    if (m.kind === 'topic') topicFeed.value = [...topicFeed.value, m].slice(-200);
    inbox.value = [{ ...inboxFields(m), receivedAt: Date.now(), readAt: null }, ...inbox.value];
  } else if (e.type === 'trackerEvent' && e.event.type.startsWith('join_')) {
    groupsChanged.value++;
  } else if (e.type === 'trackerConnected' || e.type === 'sessionEnded' || e.type === 'trackerLost') {
    refreshStatus?.();
  }
}

/** Set by main.ts: reloads the overview's status (a typed command). */
export let refreshStatus: (() => void) | undefined;
export function onRefreshStatus(f: () => void): void {
  refreshStatus = f;
}
