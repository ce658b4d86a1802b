import type { ResultOf } from '../../protocol/control.js';
import type { PeerEvent, TransferProgress } from '../../protocol/peer-events.js';

/**
 * What the event socket carries. `event` frames are numbered and kept for a
 * replay after a reconnect; `live` frames carry events that supersede each
 * other (a download's progress, at most 4 a second each): they go to the pages
 * connected now and are not kept, since the next one (or a snapshot) says the
 * same. `snapshot` comes first when the page is new or missed events no longer
 * kept (the page reloads its views from it); `downloads` carries the table of
 * transfers when a download starts, resumes or ends.
 */
export type UiFrame =
  | { kind: 'event'; seq: number; event: PeerEvent }
  | { kind: 'live'; event: PeerEvent }
  | {
      kind: 'snapshot';
      seq: number;
      status: ResultOf<'status'> | null;
      downloads: ResultOf<'show_downloads'>['downloads'];
      /** The running downloads' peers and piece maps. */
      transfers: TransferProgress[];
    }
  | { kind: 'downloads'; downloads: ResultOf<'show_downloads'>['downloads'] };
