import { describe, expect, it } from 'vitest';
import { Heartbeat, type HeartbeatClock, type HeartbeatHost } from '../../src/tracker/ws/heartbeat.js';

// The tracker's session heartbeat with a fake clock and fake pongs: a session that
// answers its pings stays, one that misses the timeout is cut, one that never says
// hello is closed, and stop() leaves no timer behind.

/** A clock whose time moves only when the test says, firing due timers in order. */
class FakeClock implements HeartbeatClock {
  private t = 1_000_000;
  readonly timers = new Set<{ ms: number; next: number; fn: () => void }>();

  now(): number {
    return this.t;
  }

  every(ms: number, fn: () => void): () => void {
    const timer = { ms, next: this.t + ms, fn };
    this.timers.add(timer);
    return () => this.timers.delete(timer);
  }

  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const due = [...this.timers].filter((x) => x.next <= end).sort((a, b) => a.next - b.next)[0];
      if (due === undefined) break;
      this.t = due.next;
      due.next += due.ms;
      due.fn();
    }
    this.t = end;
  }
}

interface FakeSession {
  name: string;
  greeted: boolean;
  /** Answers each ping at once (a live peer) or never (a dead one). */
  pongs: boolean;
  pings: number;
  cut?: 'timeout' | 'no hello';
}

const OPTIONS = { heartbeatIntervalMs: 1_000, heartbeatTimeoutMs: 500, helloTimeoutMs: 10_000 };

function setup() {
  const clock = new FakeClock();
  const cuts: string[] = [];
  const host: HeartbeatHost<FakeSession> = {
    ping(s) {
      s.pings++;
      if (s.pongs) queueMicrotask(() => heartbeat.pong(s));
    },
    greeted: (s) => s.greeted,
    cut(s, reason) {
      s.cut = reason;
      cuts.push(`${s.name}: ${reason}`);
      heartbeat.remove(s); // as the hub does once the socket closes
    },
  };
  const heartbeat = new Heartbeat(host, OPTIONS, clock);
  const session = (name: string, pongs: boolean, greeted = true): FakeSession => {
    const s: FakeSession = { name, greeted, pongs, pings: 0 };
    heartbeat.add(s);
    return s;
  };
  /** Moves the clock in small steps, letting the fake pongs (microtasks) arrive between them. */
  const run = async (ms: number) => {
    for (let left = ms; left > 0; left -= 50) {
      clock.advance(Math.min(50, left));
      await Promise.resolve();
    }
  };
  return { clock, heartbeat, session, run, cuts };
}

describe('tracker session heartbeat', () => {
  it('keeps a session that pongs, pinging it once an interval', async () => {
    const { heartbeat, session, run, cuts } = setup();
    heartbeat.start();
    const alive = session('alive', true);
    await run(60_000);
    expect(cuts).toEqual([]);
    expect(alive.pings).toBeGreaterThanOrEqual(55);
    expect(alive.pings).toBeLessThanOrEqual(60);
    expect(heartbeat.size).toBe(1);
    heartbeat.stop();
  });

  it('cuts a session that misses its pong, within a tick of the timeout, and leaves the others', async () => {
    const { heartbeat, session, run, cuts } = setup();
    heartbeat.start();
    const alive = session('alive', true);
    const dead = session('dead', false);
    await run(1_000); // the first ping goes out one interval after the session opened
    expect(dead.pings).toBe(1);
    expect(dead.cut).toBeUndefined();
    await run(400);
    expect(dead.cut).toBeUndefined(); // still within the timeout
    await run(250); // 500 ms timeout + at most one 125 ms tick
    expect(dead.cut).toBe('timeout');
    expect(cuts).toEqual(['dead: timeout']);
    await run(10_000);
    expect(alive.cut).toBeUndefined();
    expect(dead.pings).toBe(1);
    heartbeat.stop();
  });

  it('a pong that comes late but inside the timeout keeps the session', async () => {
    const { heartbeat, session, run } = setup();
    heartbeat.start();
    const slow = session('slow', false);
    await run(1_000);
    expect(slow.pings).toBe(1);
    await run(300);
    heartbeat.pong(slow);
    await run(800);
    expect(slow.cut).toBeUndefined();
    expect(slow.pings).toBe(2); // pinged again an interval after the first ping
    await run(700); // and that one is not answered
    expect(slow.cut).toBe('timeout');
    heartbeat.stop();
  });

  it('never pings a peer that pings on its own, and still cuts it once it falls silent', async () => {
    const { heartbeat, session, run } = setup();
    heartbeat.start();
    // Its pongs never come: only what it sends keeps it.
    const pinger = session('pinger', false);
    for (let i = 0; i < 30; i++) {
      await run(800); // the peer's own heartbeat, inside the tracker's 1 s interval
      heartbeat.heard(pinger);
    }
    expect(pinger.pings).toBe(0);
    expect(pinger.cut).toBeUndefined();
    // Silent from now: pinged an interval after it was last heard, cut a timeout later.
    await run(1_000);
    expect(pinger.pings).toBe(1);
    await run(650);
    expect(pinger.cut).toBe('timeout');
    heartbeat.stop();
  });

  it('a frame heard while a ping waits answers it', async () => {
    const { heartbeat, session, run } = setup();
    heartbeat.start();
    const busy = session('busy', false);
    await run(1_000);
    expect(busy.pings).toBe(1);
    await run(200);
    heartbeat.heard(busy);
    await run(700);
    expect(busy.cut).toBeUndefined();
    heartbeat.stop();
  });

  it('closes a session that never says hello, but not one that does', async () => {
    const { heartbeat, session, run, cuts } = setup();
    heartbeat.start();
    const mute = session('mute', true, false);
    const polite = session('polite', true, false);
    await run(5_000);
    polite.greeted = true;
    await run(5_200);
    expect(cuts).toEqual(['mute: no hello']);
    expect(mute.cut).toBe('no hello');
    expect(polite.cut).toBeUndefined();
    heartbeat.stop();
  });

  it('stop() clears its timer: no pings, no cuts after it', async () => {
    const { clock, heartbeat, session, run } = setup();
    heartbeat.start();
    heartbeat.start(); // twice is one timer
    expect(clock.timers.size).toBe(1);
    const dead = session('dead', false);
    heartbeat.stop();
    expect(clock.timers.size).toBe(0);
    await run(30_000);
    expect(dead.pings).toBe(0);
    expect(dead.cut).toBeUndefined();
  });

  it('forgets a removed session', async () => {
    const { heartbeat, session, run } = setup();
    heartbeat.start();
    const gone = session('gone', false);
    heartbeat.remove(gone);
    expect(heartbeat.size).toBe(0);
    await run(5_000);
    expect(gone.pings).toBe(0);
    heartbeat.stop();
  });
});
