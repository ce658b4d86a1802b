import { describe, expect, it } from 'vitest';
import { EventLog } from '../../src/peer/ui/event-log.js';
import { sameSecret, UiSessions } from '../../src/peer/ui/sessions.js';

const LIMITS = { ticketTtlMs: 1000, idleTtlMs: 5000, maxSessions: 2 };

describe('web UI logins', () => {
  it('trades a ticket once, within its lifetime', () => {
    let now = 0;
    const s = new UiSessions(LIMITS, () => now);
    const t = s.issueTicket();
    const session = s.redeem(t);
    expect(session).toBeDefined();
    expect(s.redeem(t)).toBeUndefined();
    const late = s.issueTicket();
    now = 1001;
    expect(s.redeem(late)).toBeUndefined();
    expect(s.redeem('never-issued')).toBeUndefined();
  });

  it('forgets an idle session and the oldest beyond the limit; each session has its own CSRF token', () => {
    let now = 0;
    const s = new UiSessions(LIMITS, () => now);
    const a = s.redeem(s.issueTicket())!;
    const b = s.redeem(s.issueTicket())!;
    expect(a.csrf).not.toBe(b.csrf);
    expect(a.id).not.toBe(a.csrf);
    now = 4000;
    expect(s.find(b.id)).toBe(b); // touched at 4000
    now = 6000;
    expect(s.find(a.id)).toBeUndefined(); // idle since 0
    expect(s.find(b.id)).toBe(b);
    const c = s.redeem(s.issueTicket())!;
    const d = s.redeem(s.issueTicket())!;
    expect(s.find(b.id)).toBeUndefined(); // the oldest went
    expect(s.find(c.id)).toBe(c);
    expect(s.find(d.id)).toBe(d);
    s.end(d.id);
    expect(s.find(d.id)).toBeUndefined();
  });

  it('compares secrets whole', () => {
    expect(sameSecret('abc', 'abc')).toBe(true);
    expect(sameSecret('ab', 'abc')).toBe(false);
    expect(sameSecret(undefined, 'abc')).toBe(false);
  });
});

describe('the numbered event stream', () => {
  const event = (url: string) => ({ type: 'trackerConnected' as const, url });

  it('replays what a page missed, or asks for a snapshot when that is gone', () => {
    const log = new EventLog(3);
    expect(log.since(-1)).toBeUndefined(); // a new page: snapshot
    expect(log.since(0)).toEqual([]);
    for (const u of ['a', 'b', 'c', 'd', 'e']) log.append(event(u));
    expect(log.lastSeq).toBe(5);
    expect(log.since(5)).toEqual([]);
    expect(log.since(3)?.map((e) => [e.seq, (e.event as { url: string }).url])).toEqual([
      [4, 'd'],
      [5, 'e'],
    ]);
    expect(log.since(2)?.map((e) => e.seq)).toEqual([3, 4, 5]);
    expect(log.since(1)).toBeUndefined(); // event 2 is gone
    expect(log.since(9)).toBeUndefined(); // from another daemon's life
    expect(log.since(1.5)).toBeUndefined();
  });
});
