import { setTimeout as sleep } from 'node:timers/promises';
import { callDaemon, type ShowMessagesResult } from '../peer/client.js';
import { formatResult } from './format.js';
import { safeJson, shownLines } from './sanitize.js';

/**
 * The CLI's live modes: `show_messages --follow` and `show_downloads --watch` keep asking the
 * daemon (on loopback, every POLL_MS) and print what is new until Ctrl-C. They are the CLI's,
 * not the command table's: the daemon answers each ask like any other command.
 */
export const LIVE = {
  show_messages: {
    flag: 'follow',
    usage: '--follow [<user_id> | --group G]',
    what: 'prints the messages so far, then each one as it arrives, until Ctrl-C',
  },
  show_downloads: {
    flag: 'watch',
    usage: '--watch',
    what: 'shows the downloads again every second, until Ctrl-C',
  },
} as const satisfies Record<string, { flag: string; usage: string; what: string }>;

export type LiveCommand = keyof typeof LIVE;

const POLL_MS = 500;
const WATCH_MS = 1000;

export interface LiveOptions {
  dataDir: string;
  json: boolean;
  stdout: NodeJS.WriteStream;
  signal: AbortSignal;
}

/** Waits `ms` or until the signal; false once stopped. */
async function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  await sleep(ms, undefined, { signal }).catch(() => undefined);
  return !signal.aborted;
}

/**
 * The messages so far (marked read, as show_messages does), then every unread one the daemon
 * stores after, in order. --json prints one message per line (NDJSON).
 */
export async function followMessages(words: string[], o: LiveOptions): Promise<void> {
  const print = (r: ShowMessagesResult, always: boolean) => {
    if (o.json) for (const m of r.messages) o.stdout.write(`${safeJson(m)}\n`);
    else if (always || r.messages.length > 0) {
      o.stdout.write(`${shownLines(formatResult('show_messages', { ...r, unreadLeft: 0 }))}\n`);
    }
  };
  print(await callDaemon(o.dataDir, 'show_messages', words, { signal: o.signal }), !o.json);
  const unread = words.includes('--unread') ? words : [...words, '--unread'];
  while (await pause(POLL_MS, o.signal)) {
    let more = true;
    while (more && !o.signal.aborted) {
      const r = await callDaemon(o.dataDir, 'show_messages', unread, { signal: o.signal });
      print(r, false);
      more = (r.unreadLeft ?? 0) > 0;
    }
  }
}

/** show_downloads again every second: redrawn in place on a terminal, appended otherwise. */
export async function watchDownloads(words: string[], o: LiveOptions): Promise<void> {
  do {
    const r = await callDaemon(o.dataDir, 'show_downloads', words, { signal: o.signal });
    if (o.json) o.stdout.write(`${safeJson(r)}\n`);
    else {
      const text = shownLines(formatResult('show_downloads', r));
      o.stdout.write(o.stdout.isTTY ? `\x1b[H\x1b[2J${text}\n` : `${text}\n\n`);
    }
  } while (await pause(WATCH_MS, o.signal));
}
