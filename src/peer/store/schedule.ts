import type Database from 'better-sqlite3';
import type { SlotMode } from '../../core/week-schedule.js';

/**
 * The bandwidth settings in peer.db: the weekly schedule (non-full slots, the limited slots'
 * rates) and the limits set at run time (global and per group).
 */
export class ScheduleRepository {
  constructor(private readonly db: Database.Database) {}

  /** Every slot that is not 'full', by slot number. */
  slots(): Map<number, SlotMode> {
    const rows = this.db.prepare('SELECT slot, mode FROM schedule_slots').all() as {
      slot: number;
      mode: SlotMode;
    }[];
    return new Map(rows.map((r) => [r.slot, r.mode]));
  }

  /** Sets the mode of each slot given, in one transaction ('full' removes a slot's row). */
  setSlots(slots: readonly number[], mode: SlotMode): void {
    const remove = this.db.prepare('DELETE FROM schedule_slots WHERE slot = ?');
    const put = this.db.prepare(
      'INSERT INTO schedule_slots (slot, mode) VALUES (?, ?) ON CONFLICT (slot) DO UPDATE SET mode = excluded.mode',
    );
    this.db.transaction(() => {
      for (const slot of slots) {
        if (mode === 'full') remove.run(slot);
        else put.run(slot, mode);
      }
    })();
  }

  /** The limited slots' rates, bytes per second (0 = unlimited). */
  rates(): { uploadBytesPerSec: number; downloadBytesPerSec: number } {
    const rows = this.db.prepare('SELECT direction, bytes_per_sec FROM schedule_rates').all() as {
      direction: 'upload' | 'download';
      bytes_per_sec: number;
    }[];
    const of = (d: string) => rows.find((r) => r.direction === d)?.bytes_per_sec ?? 0;
    return { uploadBytesPerSec: of('upload'), downloadBytesPerSec: of('download') };
  }

  setRate(direction: 'upload' | 'download', bytesPerSec: number): void {
    this.db
      .prepare(
        'INSERT INTO schedule_rates (direction, bytes_per_sec) VALUES (?, ?) ON CONFLICT (direction) DO UPDATE SET bytes_per_sec = excluded.bytes_per_sec',
      )
      .run(direction, bytesPerSec);
  }

  /** The kept limits: the daemon's global ones (groupId ''), then each group's. */
  limits(): { groupId: string; uploadBytesPerSec: number; downloadBytesPerSec: number }[] {
    return this.db
      .prepare(
        'SELECT group_id AS groupId, upload_bytes_per_sec AS uploadBytesPerSec, download_bytes_per_sec AS downloadBytesPerSec FROM bandwidth_limits ORDER BY group_id',
      )
      .all() as { groupId: string; uploadBytesPerSec: number; downloadBytesPerSec: number }[];
  }

  /** Keeps the global (groupId '') or a group's limits; none left (both 0) removes the row. */
  setLimits(groupId: string, limits: { uploadBytesPerSec: number; downloadBytesPerSec: number }): void {
    if (limits.uploadBytesPerSec === 0 && limits.downloadBytesPerSec === 0) {
      this.db.prepare('DELETE FROM bandwidth_limits WHERE group_id = ?').run(groupId);
      return;
    }
    this.db
      .prepare(
        `INSERT INTO bandwidth_limits (group_id, upload_bytes_per_sec, download_bytes_per_sec) VALUES (?, ?, ?)
         ON CONFLICT (group_id) DO UPDATE SET upload_bytes_per_sec = excluded.upload_bytes_per_sec,
           download_bytes_per_sec = excluded.download_bytes_per_sec`,
      )
      .run(groupId, limits.uploadBytesPerSec, limits.downloadBytesPerSec);
  }
}
