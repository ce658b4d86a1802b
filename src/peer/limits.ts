/**
 * The daemon's bandwidth limits and weekly schedule (issue 17): the
 * Bandwidth buckets the piece server and every download's dial are held to
 * (wire/bandwidth.ts), set_limits at run time, each download's own limit
 * (download_file --limit, kept in peer.db's meta so a resumed download keeps
 * it), the global and group limits set_limits sets (kept in peer.db, so a restart keeps
 * them), and the schedule kept in peer.db, whose slot is applied within 1 s of
 * a boundary: a timer looks at the wall clock every 250 ms.
 */
import type { TokenBucket } from '../core/token-bucket.js';
import {
  parseDays,
  parseHours,
  parseSlotMode,
  type SlotMode,
  scheduleRanges,
  slotAt,
  slotName,
  slotRates,
  slotsOf,
} from '../core/week-schedule.js';
import type { LimitsView } from '../protocol/control.js';
import { CoterieError } from '../protocol/errors.js';
import { assertName } from '../protocol/names.js';
import { parseRate } from '../protocol/rates.js';
import { Bandwidth, type Clock, type ClockTimer, type Dial, MAX_BLOCK_BYTES } from '../wire/index.js';
import type { PeerStore } from './store/index.js';

export interface LimitsOptions {
  store: PeerStore;
  /** Timers and the buckets' time. */
  clock: Clock;
  /** Wall-clock milliseconds, for the schedule's slots (a test passes a shifted one). */
  wallNow: () => number;
  /**
   * The daemon's global limits from its command line: each one given replaces the one kept in
   * peer.db (and is kept); one not given is the kept one (set_limits at an earlier run), or none.
   */
  uploadBytesPerSec?: number | undefined;
  downloadBytesPerSec?: number | undefined;
  exemptLocal?: boolean;
  /** Told each time the schedule's slot changes mode. */
  onSlot?: (mode: SlotMode, slot: string) => void;
}

/** set_schedule's words: a range of slots and its mode, and/or the limited slots' rates. */
export interface ScheduleChange {
  days?: string;
  hours?: string;
  mode?: string;
  upload?: string;
  download?: string;
}

export interface Limits {
  readonly bandwidth: Bandwidth;
  /** The dial of a download: its reads held to its group's limits, the global ones and its own. */
  dial(dial: Dial, download: { id: number; groupId: string }): Dial;
  /** Keeps a download's own limit (bytes/s, 0 = none) before its engine starts. */
  setDownloadLimit(downloadId: number, bytesPerSec: number): void;
  /** A download's backlog bound (bytes, asked at each request) and, under a slow limit, its block size. */
  pipe(download: { id: number; groupId: string }): {
    pipeCapBytes: () => number;
    blockSizeBytes?: number;
  };
  setLimits(change: { group?: string; upload?: string; download?: string }): LimitsView;
  setSchedule(change: ScheduleChange): LimitsView;
  view(): LimitsView;
  stop(): void;
}

/** How often the wall clock is read for a slot boundary: a boundary is in force within this. */
const SLOT_CHECK_MS = 250;

const downloadLimitKey = (id: number) => `download.${id}.limit`;

/**
 * A download held to a rate keeps this much of it requested and unread (socket buffers hold
 * the rest of a bigger backlog and release it in bursts the limit does not see).
 */
const PIPE_SECONDS = 0.2;
/** Smallest block a slow download asks for: frames and requests cost per block. */
const MIN_BLOCK_BYTES = 16 * 1024;

/**
 * The block size of a download that starts under a slow limit: a power of two up to a tenth
 * of a second of its rate, so a block crossing the wire at once is a small part of any window
 * (a whole 1 MiB piece at 1 MiB/s would be a second's burst). Faster, the piece size as always.
 * Chosen at start: a limit changed later keeps the blocks it started with, and the scheduler's
 * usual 32 blocks in flight at most (2 MiB of 64 KiB blocks: 136.8 MiB/s once lifted, load 15;
 * scaled to 32 MiB of them it made 26.4 at load 22).
 */
function blockSizeFor(rate: number): { blockSizeBytes?: number } {
  const tenth = rate / 10;
  if (!(tenth < MAX_BLOCK_BYTES)) return {};
  let block = MIN_BLOCK_BYTES;
  while (block * 2 <= tenth) block *= 2;
  return { blockSizeBytes: block };
}

export function createLimits(o: LimitsOptions): Limits {
  const { store, clock } = o;
  const kept = store.schedule.limits();
  const keptGlobal = kept.find((l) => l.groupId === '');
  const bandwidth = new Bandwidth({
    clock,
    upload: o.uploadBytesPerSec ?? keptGlobal?.uploadBytesPerSec ?? 0,
    download: o.downloadBytesPerSec ?? keptGlobal?.downloadBytesPerSec ?? 0,
    exemptLocal: o.exemptLocal ?? false,
  });
  store.schedule.setLimits('', bandwidth.global());
  for (const g of kept) if (g.groupId !== '') bandwidth.setGroup(g.groupId, g);
  /** Each download's own bucket, shared by all its connections (redials included). */
  const downloadBuckets = new Map<number, TokenBucket>();
  let slots = store.schedule.slots();
  let current: { slot: number; mode: SlotMode } | undefined;

  const applySlot = (force = false) => {
    const slot = slotAt(o.wallNow());
    const mode = slots.get(slot) ?? 'full';
    if (!force && current?.slot === slot && current.mode === mode) return;
    const changed = current?.mode !== mode;
    current = { slot, mode };
    bandwidth.setSlot(slotRates(mode, store.schedule.rates()));
    if (changed) o.onSlot?.(mode, slotName(slot));
  };
  applySlot(true);
  const timer: ClockTimer = clock.setInterval(() => applySlot(), SLOT_CHECK_MS);

  const view = (): LimitsView => {
    const slot = slotAt(o.wallNow());
    return {
      global: bandwidth.global(),
      groups: bandwidth.groups(),
      exemptLocal: bandwidth.exemptLocal,
      schedule: {
        mode: slots.get(slot) ?? 'full',
        slot: slotName(slot),
        limited: store.schedule.rates(),
        ranges: scheduleRanges(slots),
      },
    };
  };

  /** A download's own bucket, made once from the limit kept for it (undefined: none). */
  const bucketOf = (id: number) => {
    let bucket = downloadBuckets.get(id);
    if (bucket === undefined) {
      const limit = Number(store.getMeta(downloadLimitKey(id)) ?? 0);
      if (limit > 0) {
        bucket = bandwidth.downloadBucket(limit);
        downloadBuckets.set(id, bucket);
      }
    }
    return bucket;
  };

  return {
    bandwidth,
    dial(dial, download) {
      return bandwidth.throttledDial(dial, download.groupId, bucketOf(download.id));
    },
    pipe(download) {
      const own = bucketOf(download.id);
      const rate = () => bandwidth.downloadRate(download.groupId, own);
      return { pipeCapBytes: () => rate() * PIPE_SECONDS, ...blockSizeFor(rate()) };
    },
    setDownloadLimit(downloadId, bytesPerSec) {
      store.setMeta(downloadLimitKey(downloadId), bytesPerSec > 0 ? String(bytesPerSec) : undefined);
      downloadBuckets.delete(downloadId);
    },
    setLimits(change) {
      const upload = change.upload === undefined ? undefined : parseRate(change.upload, 'upload limit');
      const download =
        change.download === undefined ? undefined : parseRate(change.download, 'download limit');
      if (upload === undefined && download === undefined) {
        throw new CoterieError(
          'USAGE',
          'set_limits needs --upload RATE, --download RATE or both (0 = unlimited)',
        );
      }
      const limits = {
        ...(upload === undefined ? {} : { uploadBytesPerSec: upload }),
        ...(download === undefined ? {} : { downloadBytesPerSec: download }),
      };
      // Kept in peer.db as well: a restarted daemon holds to what was set (createLimits).
      if (change.group === undefined) store.schedule.setLimits('', bandwidth.setGlobal(limits));
      else {
        assertName('group id', change.group);
        store.schedule.setLimits(change.group, bandwidth.setGroup(change.group, limits));
      }
      return view();
    },
    setSchedule(change) {
      const upload = change.upload === undefined ? undefined : parseRate(change.upload, 'upload limit');
      const download =
        change.download === undefined ? undefined : parseRate(change.download, 'download limit');
      const range = change.days !== undefined || change.hours !== undefined || change.mode !== undefined;
      if (!range && upload === undefined && download === undefined) {
        throw new CoterieError(
          'USAGE',
          'set_schedule needs DAYS HOURS MODE (e.g. mon-fri 18:00-23:00 limited), or --upload/--download for the limited slots',
        );
      }
      // Everything is checked before anything is kept.
      const set =
        range && change.days !== undefined && change.hours !== undefined && change.mode !== undefined
          ? {
              slots: slotsOf(parseDays(change.days), parseHours(change.hours)),
              mode: parseSlotMode(change.mode),
            }
          : undefined;
      if (range && set === undefined)
        throw new CoterieError('USAGE', 'set_schedule takes DAYS, HOURS and MODE together');
      if (upload !== undefined) store.schedule.setRate('upload', upload);
      if (download !== undefined) store.schedule.setRate('download', download);
      if (set !== undefined) store.schedule.setSlots(set.slots, set.mode);
      slots = store.schedule.slots();
      applySlot(true);
      return view();
    },
    view,
    stop: () => timer.cancel(),
  };
}
