import type { TrackerEvent } from './bus.js';

type StoredRange = { s: string; from: number; to: number };

/** What the backlog keeps at most before it gives up on its oldest events (see UnsentEvents). */
export interface UnsentLimits {
  /** Events other than `messages_stored`, kept one by one in order. */
  events: number;
  /** Streams with a `messages_stored` range waiting (one range each, however many batches). */
  streams: number;
}

export const UNSENT_LIMITS: Readonly<UnsentLimits> = Object.freeze({ events: 1_000, streams: 10_000 });

/**
 * Streams per `messages_stored` event that the backlog hands back: about 100 bytes a range, so
 * one event stays well under a NOTIFY payload's 8000 bytes whatever the stream ids' length.
 */
export const STORED_RANGES_PER_EVENT = 25;

/**
 * The events a tracker could not NOTIFY yet, kept for the next try (pg-bus.ts): a failed NOTIFY
 * must not leave a reader on another tracker waiting for the next message of its stream.
 *
 * Bounded. The `messages_stored` ranges of one origin merge per stream, [lowest from, highest to]:
 * they carry no data, only "read stream S up to seq N", and a reader's tracker reads whatever it
 * has not pushed below N (push.ts fills gaps), so one range per stream says all of them. Other
 * events stay in order up to `limits.events`. Past either limit the backlog drops what it holds of
 * that kind and remembers it: what it hands back next starts with `events_lost`, and each tracker
 * that hears it reads the store again as after losing its own listener (its sessions catch up
 * from their cursors, its caches go).
 */
export class UnsentEvents {
  private others: TrackerEvent[] = [];
  private readonly ranges = new Map<string, StoredRange>();
  private origin: string | undefined;
  private storedAt = 0;
  private lostSome = false;

  constructor(private readonly limits: UnsentLimits = UNSENT_LIMITS) {}

  /** Nothing waiting, nothing lost. */
  get empty(): boolean {
    return this.others.length === 0 && this.ranges.size === 0 && !this.lostSome;
  }

  /** Events and stream ranges waiting (a figure for logs). */
  get size(): number {
    return this.others.length + this.ranges.size;
  }

  add(events: readonly TrackerEvent[]): void {
    for (const e of events) {
      if (e.kind === 'messages_stored') this.addStored(e);
      else if (e.kind === 'events_lost') this.lostSome = true;
      else this.others.push(e);
    }
    if (this.others.length > this.limits.events) {
      this.others = [];
      this.lostSome = true;
    }
    if (this.ranges.size > this.limits.streams) {
      this.ranges.clear();
      this.lostSome = true;
    }
  }

  /** Everything waiting, in the order to send it (events_lost first, the ranges last), and empties. */
  take(): TrackerEvent[] {
    const out: TrackerEvent[] = [];
    if (this.lostSome) out.push({ kind: 'events_lost', at: Date.now() });
    out.push(...this.others);
    if (this.origin !== undefined) {
      const ranges = [...this.ranges.values()];
      for (let i = 0; i < ranges.length; i += STORED_RANGES_PER_EVENT) {
        out.push({
          kind: 'messages_stored',
          origin: this.origin,
          streams: ranges.slice(i, i + STORED_RANGES_PER_EVENT),
          at: this.storedAt,
        });
      }
    }
    this.others = [];
    this.ranges.clear();
    this.lostSome = false;
    return out;
  }

  private addStored(e: Extract<TrackerEvent, { kind: 'messages_stored' }>): void {
    // One tracker's bus sends only its own announcements; another origin is a caller's mistake,
    // kept as it is rather than merged under the wrong name.
    if (this.origin !== undefined && e.origin !== this.origin) {
      this.others.push(e);
      return;
    }
    this.origin = e.origin;
    this.storedAt = Math.max(this.storedAt, e.at);
    for (const r of e.streams) {
      const had = this.ranges.get(r.s);
      if (had === undefined) this.ranges.set(r.s, { s: r.s, from: r.from, to: r.to });
      else {
        had.from = Math.min(had.from, r.from);
        had.to = Math.max(had.to, r.to);
      }
    }
  }
}
