import { describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import { EventLog } from '../../src/peer/ui/event-log.js';
import { EventStream } from '../../src/peer/ui/event-stream.js';
import type { UiFrame } from '../../src/peer/ui/frames.js';
import type { DownloadView } from '../../src/protocol/control.js';

/** A page's socket that keeps what it is sent. */
function pageSocket(frames: UiFrame[]): WebSocket {
  return {
    OPEN: 1,
    readyState: 1,
    send: (text: string) => frames.push(JSON.parse(text) as UiFrame),
    on: () => undefined,
  } as unknown as WebSocket;
}

const row = (state: DownloadView['state']) => ({ id: 1, fileName: 'a.bin', state }) as DownloadView;

describe('the web UI event stream', () => {
  it('pushes the table once more when a download ends while a push is reading it', async () => {
    // The first read of the table is slow and sees the download active; it ends meanwhile.
    let reads = 0;
    let release!: () => void;
    const slow = new Promise<void>((r) => {
      release = r;
    });
    const execute = async (name: string) => {
      if (name !== 'show_downloads') return null;
      reads++;
      if (reads === 2) await slow; // the push started by the first progress event
      return { downloads: [row(reads <= 2 ? 'active' : 'completed')] };
    };
    const stream = new EventStream(new EventLog(), execute);
    const frames: UiFrame[] = [];
    stream.accept(pageSocket(frames), -1);
    await new Promise((r) => setTimeout(r, 10)); // the snapshot (read 1)
    const first = stream.pushDownloads(); // read 2, held
    stream.publish({ type: 'downloadCompleted', id: 1, fileName: 'a.bin', dest: '/tmp/a.bin' });
    release();
    await first;
    const tables = frames.filter((f) => f.kind === 'downloads' || f.kind === 'snapshot');
    const last = tables.at(-1) as { downloads: DownloadView[] };
    expect(last.downloads[0]!.state).toBe('completed');
    expect(reads).toBe(3);
  });
});
