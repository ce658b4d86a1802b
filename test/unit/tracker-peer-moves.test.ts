import { afterEach, describe, expect, it, vi } from 'vitest';
import type { TrackerEvent } from '../../src/tracker/events/index.js';
import { createPeerMoves, PEER_MOVES_MIN_GAP_MS } from '../../src/tracker/services/peer-moves.js';

// The tracker's peer_moved events (issue 19): one per change, at most one per peer per gap, the
// last change of a burst always published with the addresses of the moment.
describe('peer moves', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  const setUp = () => {
    vi.useFakeTimers();
    const published: Extract<TrackerEvent, { kind: 'peer_moved' }>[] = [];
    const moves = createPeerMoves({
      bus: {
        publish: async (e) => {
          if (e.kind === 'peer_moved') published.push(e);
        },
      },
      now: () => Date.now(),
      onError: () => {},
    });
    return { moves, published, addresses: (e: { addresses: string[] }) => e.addresses };
  };

  it('publishes a change at once and a burst after it once, with its last addresses', () => {
    const { moves, published, addresses } = setUp();
    let now = ['10.0.0.1:1'];
    moves.changed('a', () => now);
    expect(published.map(addresses)).toEqual([['10.0.0.1:1']]);
    now = ['10.0.0.1:2'];
    moves.changed('a', () => now);
    now = ['10.0.0.1:3'];
    moves.changed('a', () => now);
    // Another peer is not held up by this one's gap.
    moves.changed('b', () => ['10.0.0.2:1']);
    expect(published.map((e) => e.peerId)).toEqual(['a', 'b']);
    vi.advanceTimersByTime(PEER_MOVES_MIN_GAP_MS - 1);
    expect(published).toHaveLength(2);
    vi.advanceTimersByTime(1);
    expect(published.map(addresses)).toEqual([['10.0.0.1:1'], ['10.0.0.2:1'], ['10.0.0.1:3']]);
    // A change a whole gap after the last event goes out at once.
    vi.advanceTimersByTime(PEER_MOVES_MIN_GAP_MS);
    moves.changed('a', () => ['10.0.0.1:4']);
    expect(published).toHaveLength(4);
  });

  it('publishes nothing pending for a peer whose session ended', () => {
    const { moves, published } = setUp();
    moves.changed('a', () => ['10.0.0.1:1']);
    moves.changed('a', () => ['10.0.0.1:2']);
    moves.forget('a');
    vi.advanceTimersByTime(10 * PEER_MOVES_MIN_GAP_MS);
    expect(published).toHaveLength(1);
  });
});
