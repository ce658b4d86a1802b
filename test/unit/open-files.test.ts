import { describe, expect, it } from 'vitest';
import { OpenFiles } from '../../src/peer/files/download/open-files.js';

// A folder download's open files (download/open-files.ts): at most `max` open, a use of each
// pinned while it runs, and the uses queued behind them woken one per room made. Waking every
// waiter at each release cost a tree of 1,500 small files seconds of CPU (each of the queued
// writes looked again at every release), enough to time a test out on a loaded machine.

const tick = () => new Promise<void>((r) => setImmediate(r));

describe('open files of a folder download', () => {
  it('keeps at most max open, wakes each queued use about once, and finishes every use', async () => {
    const open = new Set<number>();
    let peak = 0;
    const files = new OpenFiles<number>(
      8,
      async (k) => {
        await tick();
        open.add(k);
        peak = Math.max(peak, open.size);
        return k;
      },
      async (k) => {
        await tick();
        open.delete(k);
      },
    );
    const N = 2000;
    const done = await Promise.all(
      Array.from({ length: N }, (_, k) =>
        files.use(k, async (v) => {
          await tick();
          // A file finished in its use is forgotten (closed by its owner), as a folder's are.
          if (k % 2 === 0) {
            open.delete(k);
            files.forget(k);
          }
          return v;
        }),
      ),
    );
    expect(done).toEqual(Array.from({ length: N }, (_, k) => k));
    expect(peak).toBeLessThanOrEqual(8);
    expect(files.peak).toBeLessThanOrEqual(8);
    // Each of the ~2,000 queued uses is woken once or twice (an evicting one waits for its
    // close); waking them all at each release was some 2,000 × 2,000.
    expect(files.wakeups).toBeLessThan(3 * N);
  });

  it('lets a use of a file another use holds open in without waiting for room', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    const files = new OpenFiles<string>(
      1,
      async (k) => `file ${k}`,
      async () => undefined,
    );
    const first = files.use(1, async () => held);
    const again = files.use(1, async (v) => v);
    expect(await again).toBe('file 1');
    const other = files.use(2, async (v) => v);
    release();
    await first;
    expect(await other).toBe('file 2');
  });
});
