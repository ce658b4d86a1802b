import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Bitfield } from '../../src/core/bitfield.js';
import type { PieceStore } from '../../src/peer/files/download/piece-store.js';
import { DownloadPieceSource, HANDOVER_WAIT_MS } from '../../src/peer/files/download/verified-pieces.js';
import type { Manifest } from '../../src/protocol/manifest.js';
import type { PieceSource } from '../../src/wire/index.js';

// A download serves the swarm its verified pieces (a partial seeder). When it completes, its
// store closes, but the other downloaders keep their connections and ask for pieces it told
// them it has: those reads go to the share the finished file becomes, waiting for it meanwhile.

const PIECE = 4;
const manifest: Manifest = {
  version: 1,
  size: 3 * PIECE,
  pieceSize: PIECE,
  pieces: ['a', 'b', 'c'].map((c) => c.repeat(64)),
};

/** A partial file holding every piece: piece i is bytes of value i. */
function store(closed: { value: boolean }): PieceStore {
  return {
    hasPiece: () => true,
    read: async (piece: number, _offset: number, length: number) => {
      if (closed.value) throw new Error('file closed');
      return Buffer.alloc(length, piece);
    },
  } as unknown as PieceStore;
}

/** A share's source: piece i is bytes of value 100 + i; corrupt reports counted. */
function share(): PieceSource & { reports: number[] } {
  const reports: number[] = [];
  return Object.assign(new EventEmitter(), {
    pieceCount: 3,
    pieceSize: PIECE,
    pieceLength: () => PIECE,
    bitfield: Bitfield.full(3),
    read: async (piece: number, _offset: number, length: number) => Buffer.alloc(length, 100 + piece),
    reportCorrupt: (piece: number) => void reports.push(piece),
    reports,
  });
}

function source() {
  const closed = { value: false };
  const s = new DownloadPieceSource(manifest, 3);
  s.attach(store(closed));
  return { s, closed };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('a completed download hands its connections over to its share', () => {
  it('reads from its store while it runs', async () => {
    const { s } = source();
    expect(s.bitfield.isComplete()).toBe(true);
    expect([...(await s.read(1, 0, PIECE))]).toEqual([1, 1, 1, 1]);
  });

  it('once ended, reads wait for the share and are read from it', async () => {
    const { s, closed } = source();
    s.ended();
    closed.value = true;
    let got: Buffer | undefined;
    const reading = s.read(2, 0, PIECE).then((b) => {
      got = b;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(got).toBeUndefined();
    const to = share();
    s.handOver(to);
    await reading;
    expect([...got!]).toEqual([102, 102, 102, 102]);
    // Later reads go straight there, and so do corrupt reports (the share can check its file).
    expect([...(await s.read(0, 0, PIECE))]).toEqual([100, 100, 100, 100]);
    s.reportCorrupt(1);
    expect(to.reports).toEqual([1]);
  });

  it('handed over before it ended (the same file shared meanwhile), reads go to the share at once', async () => {
    const { s } = source();
    s.handOver(share());
    s.ended();
    expect([...(await s.read(1, 0, PIECE))]).toEqual([101, 101, 101, 101]);
  });

  it('handed over to nobody (failed, paused, not shared), reads are refused with PIECE_UNAVAILABLE', async () => {
    const { s } = source();
    s.ended();
    const waiting = s.read(0, 0, PIECE);
    s.handOver(null);
    await expect(waiting).rejects.toMatchObject({ code: 'PIECE_UNAVAILABLE' });
    await expect(s.read(1, 0, PIECE)).rejects.toMatchObject({ code: 'PIECE_UNAVAILABLE' });
    // The first word stands: a share that comes later does not revive it.
    s.handOver(share());
    await expect(s.read(1, 0, PIECE)).rejects.toMatchObject({ code: 'PIECE_UNAVAILABLE' });
  });

  it('a share that never comes: reads are refused after HANDOVER_WAIT_MS, not held forever', async () => {
    vi.useFakeTimers();
    const { s } = source();
    s.ended();
    const waiting = s.read(0, 0, PIECE);
    const outcome = waiting.then(
      () => 'read',
      (e: { code?: string }) => e.code,
    );
    await vi.advanceTimersByTimeAsync(HANDOVER_WAIT_MS - 1);
    let settled = false;
    void outcome.then(() => {
      settled = true;
    });
    await Promise.resolve();
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await outcome).toBe('PIECE_UNAVAILABLE');
  });
});
