import type { WebSocket } from 'ws';
import type { DownloadView, ResultOf } from '../../protocol/control.js';
import type { PeerEvent, TransferProgress } from '../../protocol/peer-events.js';
import type { EventLog } from './event-log.js';
import type { UiFrame } from './frames.js';

type Execute = (name: string, args: string[]) => Promise<unknown>;

/**
 * The pages' event sockets: each daemon event goes to every page with its
 * sequence number; a page that (re)connects gets what it missed, or a
 * snapshot when that is gone. A download's progress events go out as they
 * come (`live`, not kept); the transfers table (show_downloads) is pushed
 * when a download starts, resumes or ends. Nothing here runs on a timer:
 * the page sees what the daemon reports, when it reports it.
 */
export class EventStream {
  private readonly sockets = new Set<WebSocket>();
  private lastDownloads = '';
  /** Downloads the last pushed table shows active: progress of another one means the table changed. */
  private active = new Set<number>();
  private pushing: Promise<void> | undefined;
  private pushAgain = false;

  constructor(
    private readonly log: EventLog,
    private readonly execute: Execute,
    private readonly transfers: () => TransferProgress[] = () => [],
  ) {}

  publish(event: PeerEvent): void {
    if (event.type === 'downloadProgress') {
      this.broadcast({ kind: 'live', event });
      if (!this.active.has(event.progress.id)) void this.pushDownloads();
      return;
    }
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
      // The table as it is now (progress is not replayed; the running ones report within 250 ms).
      void this.downloads().then((downloads) => send(socket, { kind: 'downloads', downloads }));
    } else {
      void this.snapshot().then((frame) => send(socket, frame));
    }
  }

  close(): void {
    for (const s of this.sockets) s.close(1001, 'daemon stopping');
    this.sockets.clear();
  }

  /**
   * The transfers table to every page when it changed; one run at a time (progress comes in
   * bursts). A push asked for while one runs makes it read the table once more when it is done:
   * the running one may have read it before the change that asked (a download ending).
   */
  pushDownloads(): Promise<void> {
    if (this.pushing !== undefined) {
      this.pushAgain = true;
      return this.pushing;
    }
    this.pushing = (async () => {
      do {
        this.pushAgain = false;
        const downloads = await this.downloads();
        this.active = new Set(downloads.filter((d) => d.state === 'active').map((d) => d.id));
        const text = JSON.stringify(downloads);
        if (text === this.lastDownloads) continue;
        this.lastDownloads = text;
        this.broadcast({ kind: 'downloads', downloads });
      } while (this.pushAgain);
    })().finally(() => {
      this.pushing = undefined;
    });
    return this.pushing;
  }

  private async snapshot(): Promise<UiFrame> {
    const seq = this.log.lastSeq;
    const status = (await this.execute('status', []).catch(() => null)) as ResultOf<'status'> | null;
    return { kind: 'snapshot', seq, status, downloads: await this.downloads(), transfers: this.transfers() };
  }

  private async downloads(): Promise<DownloadView[]> {
    const answer = (await this.execute('show_downloads', []).catch(
      () => null,
    )) as ResultOf<'show_downloads'> | null;
    return answer?.downloads ?? [];
  }

  private broadcast(frame: UiFrame): void {
    for (const s of this.sockets) send(s, frame);
  }
}

function send(socket: WebSocket, frame: UiFrame): void {
  if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(frame));
}
