/**
 * Acknowledgements of pushed messages, merged over a short window. The first
 * one after a quiet spell goes at once (a conversation's receipt is not held
 * back); those that follow within `windowMs` wait for the window's end and go
 * as one, each stream's highest seq. A member of a group sending 50 messages a
 * second acknowledges 10 times a second instead of 50: at 1,000 members that is
 * 40,000 fewer acknowledgement frames a second for the tracker to read, commit
 * and answer with receipts, and as many fewer writes for each peer. Nothing is
 * lost by merging: a cursor only moves forward, and an acknowledgement not sent
 * (the session gone before the window ended) is repeated after the next
 * catch-up, which resends what the tracker had not heard acknowledged.
 *
 * The first window after a quiet spell ends at a random point of the window,
 * the next ones a whole window later. Every member of a group gets its first
 * message at the same moment: with windows of the same length their windows
 * would all end together, every `windowMs`, and the tracker would read a
 * thousand acknowledgements at once (and commit them, and send their receipts)
 * just when the group's next message is due to be pushed, for a latency spike
 * every fifth message at 50 messages a second. Staggered, they arrive spread
 * over the window: the same number, a few at a time.
 */
export interface DeliveryCursor {
  streamId: string;
  delivered: number;
}

export interface AckWindow {
  /** Acknowledges up to these seqs: now, or at the window's end merged with the others. */
  add(cursors: readonly DeliveryCursor[]): void;
  /** Sends what waits now (a read mark or a catch-up is going out anyway). */
  flush(): void;
  /** Forgets what waits and stops the timer (the session or the daemon is closing). */
  stop(): void;
}

/**
 * `random` (0 ≤ r < 1, Math.random by default; tests pass their own) places the end of the
 * first window of a spell at (1 - r) × windowMs: anywhere in (0, windowMs].
 */
export function createAckWindow(
  windowMs: number,
  send: (cursors: DeliveryCursor[]) => void,
  random: () => number = Math.random,
): AckWindow {
  /** Per stream, the highest seq not acknowledged yet. */
  const waiting = new Map<string, number>();
  let timer: NodeJS.Timeout | undefined;

  const flush = () => {
    if (waiting.size === 0) return;
    const cursors = [...waiting].map(([streamId, delivered]) => ({ streamId, delivered }));
    waiting.clear();
    send(cursors);
  };

  /**
   * The window after a send: what comes meanwhile waits for its end; a window with nothing in it
   * ends the spell. The first of a spell is cut short at random (above), the rest are whole.
   */
  const open = (ms: number) => {
    timer = setTimeout(() => {
      timer = undefined;
      if (waiting.size === 0) return;
      flush();
      open(windowMs);
    }, ms);
    timer.unref?.();
  };

  return {
    add(cursors) {
      for (const c of cursors) {
        if (c.delivered > (waiting.get(c.streamId) ?? 0)) waiting.set(c.streamId, c.delivered);
      }
      if (timer !== undefined) return;
      flush();
      if (windowMs > 0) open((1 - random()) * windowMs);
    },
    flush,
    stop() {
      clearTimeout(timer);
      timer = undefined;
      waiting.clear();
    },
  };
}
