import { describe, expect, it } from 'vitest';
import { goneTogether, peerState } from '../../src/tracker/services/storage-state.js';

// Storage peers that left together are given up together (tracker/services/storage-state.ts).
describe('goneTogether', () => {
  const GRACE = 1000;
  const at = (lastSeen: number, now: number) => ({ state: peerState(false, lastSeen, now, GRACE), lastSeen });

  it('gives up a peer in its grace with one gone that left just before it', () => {
    const now = 10_000;
    const first = at(now - GRACE - 1, now); // gone a millisecond ago
    const second = at(now - GRACE + 5, now); // left 6 ms later: still in its own grace
    expect([first.state, second.state]).toEqual(['gone', 'grace']);
    expect(goneTogether([first, second], GRACE).map((p) => p.state)).toEqual(['gone', 'gone']);
  });

  it('leaves alone a peer that left well after, and peers with none gone', () => {
    const now = 10_000;
    const gone = at(now - GRACE - 1, now);
    const later = at(now - GRACE / 2, now); // left half a grace later
    expect(goneTogether([gone, later], GRACE).map((p) => p.state)).toEqual(['gone', 'grace']);
    const alone = [at(now - 10, now), { state: 'live' as const, lastSeen: now }];
    expect(goneTogether(alone, GRACE).map((p) => p.state)).toEqual(['grace', 'live']);
  });
});
