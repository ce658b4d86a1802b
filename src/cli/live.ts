import type { WebSocket } from 'ws';
import {
  callDaemon,
  type DownloadView,
  getCommand,
  type InboxMessage,
  parseArgs,
  readDaemonFile,
  type ShowMessagesResult,
  type UiFrame,
} from '../peer/client.js';
import type { StoredMessage } from '../protocol/api.js';
import { inboxFields } from '../protocol/control.js';
import { CoterieError } from '../protocol/errors.js';
import { withProgress } from '../protocol/peer-events.js';
import { UI_PATHS } from '../protocol/ui.js';
import { formatResult } from './format.js';
import { safeJson, shownLines } from './sanitize.js';

/**
 * The CLI's live modes: `show_messages --follow` and `show_downloads --watch` print what the
 * daemon's event stream says (the WebSocket the web UI follows, opened with the control token)
 * until Ctrl-C. Nothing here asks the daemon again on a timer: a line is printed because the
 * daemon reported something. They are the CLI's, not the command table's.
 */
export const LIVE = {
  show_messages: {
    flag: 'follow',
    usage: '--follow [<user_id> | --group G]',
    what: 'prints the messages so far, then each one as it arrives (marked read), until Ctrl-C',
  },
  show_downloads: {
    flag: 'watch',
    usage: '--watch',
    what: 'shows the downloads, redrawn as the daemon reports progress (at most once a second), until Ctrl-C',
  },
} as const satisfies Record<string, { flag: string; usage: string; what: string }>;

export type LiveCommand = keyof typeof LIVE;

/** The shortest time between two redraws of --watch (progress comes up to 4 times a second per download). */
const REDRAW_MS = 1000;

export interface LiveOptions {
  dataDir: string;
  json: boolean;
  stdout: NodeJS.WriteStream;
  signal: AbortSignal;
}

/**
 * Opens the daemon's event stream; `onFrame` sees each frame. Resolves when the stream is open,
 * and `closed` settles when it ends: resolved after Ctrl-C, rejected when the daemon went away.
 */
async function openEvents(
  o: LiveOptions,
  onFrame: (frame: UiFrame) => void,
): Promise<{ closed: Promise<void> }> {
  const info = readDaemonFile(o.dataDir);
  if (info === undefined) {
    throw new CoterieError('DAEMON_NOT_RUNNING', `no peer daemon runs for ${o.dataDir} (no daemon.json)`);
  }
  if (info.ui === undefined) {
    throw new CoterieError(
      'UNAVAILABLE',
      'live output follows the daemon event stream, served on its web UI port: restart the peer without --no-ui',
    );
  }
  const { default: WebSocketClient } = await import('ws');
  const socket: WebSocket = new WebSocketClient(
    `ws://${info.ui.host}:${info.ui.port}${UI_PATHS.events}?since=-1`,
    { headers: { authorization: `Bearer ${info.token}` } },
  );
  const stop = () => socket.close(1000, 'client stopping');
  o.signal.addEventListener('abort', stop, { once: true });
  socket.on('message', (data) => onFrame(JSON.parse(String(data)) as UiFrame));
  const closed = new Promise<void>((resolve, reject) => {
    socket.on('close', () => {
      o.signal.removeEventListener('abort', stop);
      if (o.signal.aborted) resolve();
      else reject(new CoterieError('DAEMON_NOT_RUNNING', 'the peer daemon closed its event stream'));
    });
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', (err) =>
      reject(new CoterieError('DAEMON_NOT_RUNNING', `the daemon's event stream: ${err.message}`)),
    );
  });
  socket.on('error', () => {}); // the close that follows says it
  return { closed };
}

/** Whether a pushed message belongs to what `show_messages <words>` shows (topics never do). */
function messageFilter(words: string[]): (m: StoredMessage) => boolean {
  const a = parseArgs(getCommand('show_messages'), words);
  const user = a.values.user_id;
  const group = a.options.group;
  if (user !== undefined) return (m) => m.kind === 'direct' && m.sender === user;
  if (group !== undefined) return (m) => m.kind === 'group' && m.groupId === group;
  return (m) => m.kind !== 'topic';
}

/**
 * The messages so far (marked read, as show_messages does), then each message the daemon reports
 * received, in order, marked read once printed. --json prints one message per line (NDJSON).
 */
export async function followMessages(words: string[], o: LiveOptions): Promise<void> {
  const wanted = messageFilter(words);
  const printed = new Set<string>();
  const print = (r: ShowMessagesResult, always: boolean) => {
    const fresh = r.messages.filter((m) => !printed.has(m.messageId));
    for (const m of fresh) printed.add(m.messageId);
    if (o.json) for (const m of fresh) o.stdout.write(`${safeJson(m)}\n`);
    else if (always || fresh.length > 0) {
      o.stdout.write(
        `${shownLines(formatResult('show_messages', { ...r, messages: fresh, unreadLeft: 0 }))}\n`,
      );
    }
  };
  // Arrivals while the first listing is under way wait for it (it may hold them too).
  const early: StoredMessage[] = [];
  let me: string | undefined;
  const arrived = (m: StoredMessage) => {
    if (me === undefined) early.push(m);
    else if (wanted(m) && !printed.has(m.messageId)) {
      const got: InboxMessage = { ...inboxFields(m), receivedAt: Date.now(), readAt: null };
      print({ me, messages: [got] }, false);
      callDaemon(o.dataDir, 'mark_read', [m.messageId], { signal: o.signal }).catch(() => {});
    }
  };
  const { closed } = await openEvents(o, (frame) => {
    if (frame.kind === 'event' && frame.event.type === 'messageReceived') arrived(frame.event.message);
  });
  const first = await callDaemon(o.dataDir, 'show_messages', words, { signal: o.signal });
  print(first, !o.json);
  me = first.me;
  for (const m of early.splice(0)) arrived(m);
  await closed;
}

/**
 * The downloads as the event stream reports them: the table from its snapshot and each push,
 * the rows moved by progress events; redrawn in place on a terminal, appended otherwise, at most
 * once a second and only after something changed.
 */
export async function watchDownloads(_words: string[], o: LiveOptions): Promise<void> {
  let downloads: DownloadView[] | undefined;
  let drawnAt = 0;
  let pending: NodeJS.Timeout | undefined;
  const draw = () => {
    pending = undefined;
    drawnAt = Date.now();
    const r = { downloads: downloads ?? [] };
    if (o.json) o.stdout.write(`${safeJson(r)}\n`);
    else {
      const text = shownLines(formatResult('show_downloads', r));
      o.stdout.write(o.stdout.isTTY ? `\x1b[H\x1b[2J${text}\n` : `${text}\n\n`);
    }
  };
  const changed = () => {
    if (pending !== undefined) return;
    pending = setTimeout(draw, Math.max(0, drawnAt + REDRAW_MS - Date.now()));
  };
  const { closed } = await openEvents(o, (frame) => {
    if (frame.kind === 'snapshot' || frame.kind === 'downloads') downloads = frame.downloads;
    else if (frame.kind === 'live' && frame.event.type === 'downloadProgress' && downloads !== undefined) {
      downloads = withProgress(downloads, frame.event.progress);
    } else return;
    changed();
  });
  try {
    await closed;
  } finally {
    clearTimeout(pending);
  }
}
