import type Database from 'better-sqlite3';
import type { SlotMode } from '../../core/week-schedule.js';

/** The weekly bandwidth schedule in peer.db: non-full slots, and the limited slots' rates. */
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
}
