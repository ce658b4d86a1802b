import type { PeerEvent } from '../notices.js';

/** One event of the stream as the page receives it. */
export interface SequencedEvent {
  seq: number;
  event: PeerEvent;
}

/**
 * The daemon's events numbered for the page: each gets the next sequence
 * number, and the last `capacity` stay so that a page that reconnects with
 * the last number it saw gets exactly what it missed. A page further behind
 * than that (or from before a restart) gets a snapshot instead.
 */
export class EventLog {
  private readonly ring: SequencedEvent[] = [];
  private last = 0;

  constructor(private readonly capacity = 1000) {}

  get lastSeq(): number {
    return this.last;
  }

  append(event: PeerEvent): SequencedEvent {
    const e = { seq: ++this.last, event };
    this.ring.push(e);
    if (this.ring.length > this.capacity) this.ring.shift();
    return e;
  }

  /** The events after `seq`, or undefined when some of them are gone (resync from a snapshot). */
  since(seq: number): SequencedEvent[] | undefined {
    if (!Number.isInteger(seq) || seq < 0 || seq > this.last) return undefined;
    const first = this.ring[0]?.seq ?? this.last + 1;
    if (seq + 1 < first) return undefined;
    return this.ring.slice(seq + 1 - first);
  }
}
