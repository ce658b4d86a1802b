import type { ResultOf } from '../../protocol/control.js';
import type { PeerEvent } from '../notices.js';

/**
 * What the event socket carries. `event` frames are numbered; `snapshot` comes
 * first when the page is new or missed events no longer kept (the page reloads
 * its views from it); `downloads` carries the live table of transfers
 * (percent, rate, peers) each second while one is active.
 */
export type UiFrame =
  | { kind: 'event'; seq: number; event: PeerEvent }
  | {
      kind: 'snapshot';
      seq: number;
      status: ResultOf<'status'> | null;
      downloads: ResultOf<'show_downloads'>['downloads'];
    }
  | { kind: 'downloads'; downloads: ResultOf<'show_downloads'>['downloads'] };
