/**
 * The weekly bandwidth schedule: 7 × 96 slots of 15 minutes, Monday 00:00
 * first, in the daemon's local time, each one of four modes. Pure: parsing
 * what a person writes (`mon-fri`, `18:00-23:30`, `limited`), the slot a
 * wall-clock instant falls in, and what a mode lets through.
 */
import { CoterieError } from '../protocol/errors.js';

export const SLOT_MODES = ['full', 'limited', 'upload-only', 'paused'] as const;
export type SlotMode = (typeof SLOT_MODES)[number];

export const SLOT_MINUTES = 15;
export const SLOTS_PER_DAY = (24 * 60) / SLOT_MINUTES;
export const SLOTS_PER_WEEK = 7 * SLOTS_PER_DAY;

const DAY_NAMES = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
const DAY_SETS: Record<string, number[]> = {
  daily: [0, 1, 2, 3, 4, 5, 6],
  weekdays: [0, 1, 2, 3, 4],
  weekends: [5, 6],
};

/** The slot (0 to 671) a wall-clock instant falls in, in local time. */
export function slotAt(wallMs: number): number {
  const d = new Date(wallMs);
  const day = (d.getDay() + 6) % 7; // getDay: Sunday 0; ours: Monday 0
  return day * SLOTS_PER_DAY + Math.floor((d.getHours() * 60 + d.getMinutes()) / SLOT_MINUTES);
}

/** `mon`, `mon-fri`, `sat,sun`, `daily`, `weekdays`, `weekends` → day numbers (Monday 0). USAGE otherwise. */
export function parseDays(text: string): number[] {
  const days = new Set<number>();
  for (const part of text.toLowerCase().split(',')) {
    const named = DAY_SETS[part];
    if (named !== undefined) {
      for (const d of named) days.add(d);
      continue;
    }
    const [from, to = from] = part.split('-');
    const a = DAY_NAMES.indexOf(from as (typeof DAY_NAMES)[number]);
    const b = DAY_NAMES.indexOf(to as (typeof DAY_NAMES)[number]);
    if (a < 0 || b < 0 || part.split('-').length > 2) {
      throw new CoterieError(
        'USAGE',
        `invalid days ${JSON.stringify(text).slice(0, 40)}: write mon…sun, a range (mon-fri), a list (sat,sun), daily, weekdays or weekends`,
      );
    }
    // A range may wrap the week's end: fri-mon is Friday to Monday.
    for (let d = a; ; d = (d + 1) % 7) {
      days.add(d);
      if (d === b) break;
    }
  }
  return [...days].sort((x, y) => x - y);
}

/** `18:00-23:30` (`24:00` ends a day) → the first slot of the day and the slot past the last. */
export function parseHours(text: string): { from: number; to: number } {
  const m = /^([0-9]{1,2}):([0-9]{2})-([0-9]{1,2}):([0-9]{2})$/.exec(text.trim());
  const usage = (why: string) =>
    new CoterieError('USAGE', `invalid hours ${JSON.stringify(text).slice(0, 40)}: ${why}`);
  if (m === null) throw usage('write HH:MM-HH:MM, e.g. 18:00-23:30');
  const minutes = [Number(m[1]) * 60 + Number(m[2]), Number(m[3]) * 60 + Number(m[4])] as const;
  if (Number(m[2]) >= 60 || Number(m[4]) >= 60 || minutes[0] >= 24 * 60 || minutes[1] > 24 * 60)
    throw usage('hours run from 00:00 to 24:00');
  if (minutes.some((x) => x % SLOT_MINUTES !== 0))
    throw usage(`the schedule moves in ${SLOT_MINUTES}-minute slots: use :00, :15, :30 or :45`);
  if (minutes[1] <= minutes[0])
    throw usage('the end must come after the start (split a range over midnight)');
  return { from: minutes[0] / SLOT_MINUTES, to: minutes[1] / SLOT_MINUTES };
}

export function parseSlotMode(text: string): SlotMode {
  const mode = text.toLowerCase();
  if (!(SLOT_MODES as readonly string[]).includes(mode)) {
    throw new CoterieError(
      'USAGE',
      `invalid mode ${JSON.stringify(text).slice(0, 40)}: one of ${SLOT_MODES.join(', ')}`,
    );
  }
  return mode as SlotMode;
}

/** The slots of `days` × `hours`. */
export function slotsOf(days: number[], hours: { from: number; to: number }): number[] {
  return days.flatMap((d) =>
    Array.from({ length: hours.to - hours.from }, (_, i) => d * SLOTS_PER_DAY + hours.from + i),
  );
}

/** What a mode lets through each way, given the limited slots' rates (bytes/s, 0 = unlimited). */
export function slotRates(
  mode: SlotMode,
  limited: { uploadBytesPerSec: number; downloadBytesPerSec: number },
): { upBytesPerSec: number; downBytesPerSec: number } {
  const open = (limit: number) => (limit > 0 ? limit : Number.POSITIVE_INFINITY);
  switch (mode) {
    case 'full':
      return { upBytesPerSec: Number.POSITIVE_INFINITY, downBytesPerSec: Number.POSITIVE_INFINITY };
    case 'limited':
      return {
        upBytesPerSec: open(limited.uploadBytesPerSec),
        downBytesPerSec: open(limited.downloadBytesPerSec),
      };
    case 'upload-only':
      return { upBytesPerSec: Number.POSITIVE_INFINITY, downBytesPerSec: 0 };
    case 'paused':
      return { upBytesPerSec: 0, downBytesPerSec: 0 };
  }
}

/** A slot as people read it: `mon 18:15`. */
export function slotName(slot: number): string {
  const day = DAY_NAMES[Math.floor(slot / SLOTS_PER_DAY) % 7]!;
  const minutes = (slot % SLOTS_PER_DAY) * SLOT_MINUTES;
  return `${day} ${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
}

/**
 * The schedule as ranges of equal mode (non-full ones), for show_limits:
 * `[{ from: 'mon 18:00', to: 'mon 23:00', mode: 'limited' }]`.
 */
export function scheduleRanges(
  modes: ReadonlyMap<number, SlotMode>,
): { from: string; to: string; mode: SlotMode }[] {
  const out: { from: string; to: string; mode: SlotMode }[] = [];
  let start = -1;
  let current: SlotMode = 'full';
  for (let s = 0; s <= SLOTS_PER_WEEK; s++) {
    const mode = s === SLOTS_PER_WEEK ? 'full' : (modes.get(s) ?? 'full');
    if (mode === current) continue;
    if (current !== 'full') out.push({ from: slotName(start), to: endName(s), mode: current });
    current = mode;
    start = s;
  }
  return out;
}

function endName(slot: number): string {
  // The end of a day's last slot reads 24:00 of that day, not 00:00 of the next.
  if (slot % SLOTS_PER_DAY === 0) return `${slotName(slot - 1).slice(0, 3)} 24:00`;
  return slotName(slot);
}
