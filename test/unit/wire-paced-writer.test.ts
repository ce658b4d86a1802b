/**
 * A seeder's upload limit on a real TCP connection on loopback (wire/paced-writer.ts): a block
 * leaves in slices as the bucket allows, so the bytes the downloader's socket has read never run
 * ahead of the rate by more than one slice, whatever the block's size. Time is a fake clock the
 * test moves (the bucket's and the writer's); the bytes are the sockets' own counters.
 */
import { randomFillSync } from 'node:crypto';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  Bandwidth,
  encodePieceFrameInPlace,
  type Frame,
  FramedConnection,
  PIECE_FRAME_PREFIX_BYTES,
  wireCounters,
} from '../../src/wire/index.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { until } from '../helpers/wait.js';

const MiB = 1024 * 1024;
/** What the bucket may lend: its burst (64 KiB at least), and one slice at 1 MiB/s (52 KiB) over. */
const LEND = 64 * 1024 + 52 * 1024;

let server: Server | undefined;
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await new Promise((r) => (server === undefined ? r(undefined) : server.close(r)));
  server = undefined;
});

async function socketPair(): Promise<{ seeder: Socket; downloader: Socket }> {
  const accepted = new Promise<Socket>((resolve) => {
    server = createServer(resolve);
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  const downloader = connect({ host: '127.0.0.1', port: (server!.address() as AddressInfo).port });
  const seeder = await accepted;
  sockets.push(seeder, downloader);
  return { seeder, downloader };
}

describe('an upload limit on a real connection', () => {
  it('puts a 1 MiB block on the wire at 1 MiB/s, never a burst, and keeps the frames whole', async () => {
    const clock = new FakeClock();
    const pair = await socketPair();
    const noTimers = { keepaliveIntervalMs: 0, idleTimeoutMs: 0 };
    const seeder = new FramedConnection(pair.seeder, noTimers);
    seeder.setThrottle(
      new Bandwidth({ clock, upload: MiB }).link(pair.seeder, { groupId: 'g', gates: 'up' }),
    );
    const downloader = new FramedConnection(pair.downloader, noTimers);
    const frames: Frame[] = [];
    downloader.on('frame', (f) => frames.push(f));

    const framed = Buffer.alloc(PIECE_FRAME_PREFIX_BYTES + MiB);
    randomFillSync(framed, PIECE_FRAME_PREFIX_BYTES);
    const data = Buffer.from(framed.subarray(PIECE_FRAME_PREFIX_BYTES));
    let callbacks = 0;
    seeder.writeEncoded(encodePieceFrameInPlace(framed, 0, 0), (err) => {
      expect(err ?? null).toBeNull();
      callbacks++;
    });
    // A frame written while the block is under way must not land inside it.
    seeder.write({ type: 'keepalive' });

    const sent = wireCounters(pair.seeder);
    /** The downloader's socket has read all the seeder's socket put on the wire. */
    const settled = (what: string) =>
      until(what, () => sent.written() > 0 && pair.downloader.bytesRead === sent.written(), 5_000, 5);
    await settled('the first bytes');
    // Fake time has not moved: only what the bucket lends may have left.
    expect(pair.downloader.bytesRead).toBeLessThanOrEqual(LEND);
    for (let ms = 50; frames.length < 2; ms += 50) {
      expect(ms).toBeLessThanOrEqual(1_500);
      clock.advance(50);
      await settled(`the bytes of ${ms} ms`);
      expect(pair.downloader.bytesRead).toBeLessThanOrEqual(LEND + (MiB * ms) / 1000);
      if (callbacks === 1) await until('the keepalive', () => frames.length === 2, 5_000, 5);
    }
    expect(frames.map((f) => f.type)).toEqual(['piece', 'keepalive']);
    const piece = frames[0] as Extract<Frame, { type: 'piece' }>;
    expect(Buffer.compare(piece.data, data)).toBe(0);
    expect(callbacks).toBe(1);
    await seeder.close();
  });
});
