import type { WebSocket } from 'ws';
import type { DownloadView, ResultOf } from '../../protocol/control.js';
import type { PeerEvent } from '../notices.js';
import type { EventLog } from './event-log.js';
import type { UiFrame } from './frames.js';

/** How often the transfers table is pushed while a download is active. */
export const DOWNLOADS_PUSH_MS = 1000;

type Execute = (name: string, args: string[]) => Promise<unknown>;

/**
 * The pages' event sockets: each daemon event goes to every page with its
 * sequence number; a page that (re)connects gets what it missed, or a
 * snapshot when that is gone. While a download is active the transfers
 * table (show_downloads: percent, rate, peers) is pushed every second, so
 * the page never polls.
 */
export class EventStream {
  private readonly sockets = new Set<WebSocket>();
  private timer: NodeJS.Timeout | undefined;
  private lastDownloads = '';

  constructor(
    private readonly log: EventLog,
    private readonly execute: Execute,
  ) {}

  publish(event: PeerEvent): void {
    const e = this.log.append(event);
    this.broadcast({ kind: 'event', seq: e.seq, event: e.event });
    if (event.type === 'downloadCompleted' || event.type === 'downloadFailed') void this.pushDownloads();
  }

  /** A page's socket: the events after `since`, or a snapshot. */
  accept(socket: WebSocket, since: number): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => this.sockets.delete(socket));
    const missed = this.log.since(since);
    if (missed !== undefined) {
      for (const e of missed) send(socket, { kind: 'event', seq: e.seq, event: e.event });
    } else {
      void this.snapshot().then((frame) => send(socket, frame));
    }
    this.ensureTicking();
  }

  close(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    for (const s of this.sockets) s.close(1001, 'daemon stopping');
    this.sockets.clear();
  }

  /** Also sent when a page asks (a new download started: it shows at once). */
  async pushDownloads(): Promise<void> {
    const downloads = await this.downloads();
    const text = JSON.stringify(downloads);
    if (text === this.lastDownloads) return;
    this.lastDownloads = text;
    this.broadcast({ kind: 'downloads', downloads });
  }

  private async snapshot(): Promise<UiFrame> {
    const seq = this.log.lastSeq;
    const status = (await this.execute('status', []).catch(() => null)) as ResultOf<'status'> | null;
    return { kind: 'snapshot', seq, status, downloads: await this.downloads() };
  }

  private async downloads(): Promise<DownloadView[]> {
    const answer = (await this.execute('show_downloads', []).catch(
      () => null,
    )) as ResultOf<'show_downloads'> | null;
    return answer?.downloads ?? [];
  }

  private ensureTicking(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => {
      if (this.sockets.size === 0) return;
      void this.pushDownloads();
    }, DOWNLOADS_PUSH_MS);
    this.timer.unref();
  }

  private broadcast(frame: UiFrame): void {
    for (const s of this.sockets) send(s, frame);
  }
}

function send(socket: WebSocket, frame: UiFrame): void {
  if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(frame));
}
