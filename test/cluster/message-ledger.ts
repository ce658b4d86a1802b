// The chaos test's book of messages: what each sender was told (accepted with a
// stream and seq, or failed and left pending), what each recipient stored, and
// the checks of guarantee 1 (every accepted message reaches every recipient,
// exactly once, in order).
import type { StoredMessage } from '../../src/protocol/api.js';

export interface SentMessage {
  body: string;
  sender: string;
  recipients: readonly string[];
  /** Set once the tracker answered (accepted): where it was stored. */
  streamId?: string;
  seq?: number;
}

interface Delivery {
  body: string;
  streamId: string;
  seq: number;
  sender: string;
}

export class MessageLedger {
  /** Every send tried, by body (bodies are unique). */
  private readonly sends = new Map<string, SentMessage>();
  /** Per sender, the accepted sends in the order they were made. */
  private readonly bySender = new Map<string, SentMessage[]>();
  /** Sends that threw after their retries: left pending, maybe stored later. */
  private readonly failed = new Set<string>();
  /** Sends refused with an API error: never stored. */
  private readonly refused = new Set<string>();
  /** Per recipient, what it stored, in arrival order. */
  private readonly received = new Map<string, Delivery[]>();

  sending(body: string, sender: string, recipients: readonly string[]): void {
    this.sends.set(body, { body, sender, recipients });
  }

  accepted(body: string, streamId: string, seq: number): void {
    const m = this.sends.get(body)!;
    m.streamId = streamId;
    m.seq = seq;
    const list = this.bySender.get(m.sender);
    if (list === undefined) this.bySender.set(m.sender, [m]);
    else list.push(m);
  }

  /** No answer after the retries (TRACKER_UNAVAILABLE): pending in the sender's outbox. */
  failedToSend(body: string): void {
    this.failed.add(body);
  }

  refusedToSend(body: string): void {
    this.refused.add(body);
  }

  delivered(recipient: string, m: StoredMessage): void {
    const list = this.received.get(recipient) ?? [];
    this.received.set(recipient, list);
    list.push({ body: m.body, streamId: m.streamId, seq: m.seq, sender: m.sender });
  }

  /** The messages known stored: accepted ones, and failed ones that someone received. */
  private stored(): SentMessage[] {
    const seen = new Set<string>();
    for (const list of this.received.values()) for (const d of list) seen.add(d.body);
    return [...this.sends.values()].filter(
      (m) => m.seq !== undefined || (this.failed.has(m.body) && seen.has(m.body)),
    );
  }

  /** (recipient, body) pairs still to arrive. */
  missing(): string[] {
    const have = new Map<string, Set<string>>();
    for (const [r, list] of this.received) have.set(r, new Set(list.map((d) => d.body)));
    const out: string[] = [];
    for (const m of this.stored()) {
      for (const r of m.recipients) if (!have.get(r)?.has(m.body)) out.push(`${r} lacks ${m.body}`);
    }
    return out;
  }

  /** Deliveries of one body more than once to one recipient (a send stored twice shows so). */
  duplicates(): string[] {
    const out: string[] = [];
    for (const [r, list] of this.received) {
      const seen = new Set<string>();
      for (const d of list) {
        if (seen.has(d.body)) out.push(`${r} got ${d.body} twice`);
        seen.add(d.body);
      }
    }
    return out;
  }

  /** Per recipient and stream, seqs must arrive strictly increasing. */
  outOfOrder(): string[] {
    const out: string[] = [];
    for (const [r, list] of this.received) {
      const last = new Map<string, number>();
      for (const d of list) {
        const prev = last.get(d.streamId) ?? 0;
        if (d.seq <= prev) out.push(`${r}: ${d.streamId} seq ${d.seq} after ${prev}`);
        last.set(d.streamId, d.seq);
      }
    }
    return out;
  }

  /** Per sender and stream, accepted sends got increasing seqs in the order they were made. */
  sendOrderBroken(): string[] {
    const out: string[] = [];
    for (const [sender, list] of this.bySender) {
      const last = new Map<string, number>();
      for (const m of list) {
        const prev = last.get(m.streamId!) ?? 0;
        if (m.seq! <= prev) out.push(`${sender}: ${m.body} got seq ${m.seq} after ${prev}`);
        last.set(m.streamId!, m.seq!);
      }
    }
    return out;
  }

  /** Deliveries of anything never sent, to someone not a recipient, or not where the sender was told. */
  unexplained(): string[] {
    const out: string[] = [];
    for (const [r, list] of this.received) {
      for (const d of list) {
        const m = this.sends.get(d.body);
        if (m === undefined || this.refused.has(d.body)) out.push(`${r} got ${d.body}, never stored`);
        else if (!m.recipients.includes(r)) out.push(`${r} got ${d.body}, not a recipient`);
        else if (m.sender !== d.sender) out.push(`${r} got ${d.body} from ${d.sender}, sent by ${m.sender}`);
        else if (m.seq !== undefined && (m.streamId !== d.streamId || m.seq !== d.seq)) {
          out.push(`${r} got ${d.body} as ${d.streamId}#${d.seq}, accepted as ${m.streamId}#${m.seq}`);
        } else if (m.seq === undefined && !this.failed.has(d.body)) {
          out.push(`${r} got ${d.body}, whose send had no outcome`);
        }
      }
    }
    return out;
  }

  /**
   * Each missing pair with what tells a lost message from a late one: where it was stored, and
   * how far its recipient got on that stream. A recipient that holds later seqs of the stream
   * skipped it for good (its cursor moved past it); one that holds none later is still behind.
   */
  explainMissing(limit = 5): string {
    const missing = this.missing();
    const where = (body: string) => {
      const m = this.sends.get(body)!;
      if (m.seq !== undefined) return { streamId: m.streamId!, seq: m.seq, how: 'accepted' };
      for (const list of this.received.values()) {
        const d = list.find((x) => x.body === body);
        if (d !== undefined) return { streamId: d.streamId, seq: d.seq, how: 'failed, stored' };
      }
      return undefined;
    };
    const lines = missing.slice(0, limit).map((pair) => {
      const [r, , body] = pair.split(' ');
      const at = where(body!);
      if (at === undefined) return pair;
      const got = (this.received.get(r!) ?? []).filter((d) => d.streamId === at.streamId);
      const later = got.filter((d) => d.seq > at.seq).length;
      const top = got.reduce((n, d) => Math.max(n, d.seq), 0);
      return `${pair} (${at.how} as ${at.streamId}#${at.seq}; ${r} has up to #${top} there, ${later} later: ${later > 0 ? 'SKIPPED' : 'behind'})`;
    });
    return `${missing.length} missing: ${lines.join('; ')}`;
  }

  acceptedCount(): number {
    return [...this.bySender.values()].reduce((n, l) => n + l.length, 0);
  }

  summary(): string {
    let deliveries = 0;
    let expected = 0;
    for (const list of this.received.values()) deliveries += list.length;
    for (const m of this.stored()) expected += m.recipients.length;
    const accepted = this.acceptedCount();
    const failedDelivered = this.stored().length - accepted;
    return `${accepted} messages accepted, ${this.failed.size} failed (${failedDelivered} of them stored anyway), ${this.refused.size} refused; ${deliveries} deliveries of ${expected} expected`;
  }
}
