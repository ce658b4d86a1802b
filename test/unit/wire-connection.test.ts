import { afterEach, describe, expect, it } from 'vitest';
import { FramedConnection, type FramedConnectionOptions } from '../../src/wire/connection.js';
import { encodeFrame, type Frame, MAX_FRAME_LENGTH } from '../../src/wire/frames.js';
import { duplexPair } from '../helpers/duplex-pair.js';
import { until } from '../helpers/wait.js';

const open: FramedConnection[] = [];
afterEach(() => {
  for (const c of open.splice(0)) c.destroy();
});

function pair(a: FramedConnectionOptions = {}, b: FramedConnectionOptions = a, highWaterMark?: number) {
  const [sa, sb] = duplexPair({ highWaterMark });
  const ca = new FramedConnection(sa, a);
  const cb = new FramedConnection(sb, b);
  open.push(ca, cb);
  return [ca, cb] as const;
}

async function collect(conn: FramedConnection): Promise<Frame[]> {
  const out: Frame[] = [];
  for await (const f of conn) out.push(f);
  return out;
}

describe('FramedConnection', () => {
  it('delivers frames both ways, through events and through async iteration', async () => {
    const [a, b] = pair();
    const seenByA: Frame[] = [];
    a.on('frame', (f) => seenByA.push(f));
    const received = collect(b);
    await a.send({ type: 'have', piece: 3 });
    await a.send({ type: 'piece', piece: 3, offset: 0, data: Buffer.from('hello') });
    const requestSeen = new Promise((r) => a.once('frame', r));
    await b.send({ type: 'request', piece: 1, offset: 0, length: 10 });
    await requestSeen;
    await a.close();
    const frames = await received;
    expect(frames.map((f) => f.type)).toEqual(['have', 'piece']);
    expect(seenByA).toEqual([{ type: 'request', piece: 1, offset: 0, length: 10 }]);
    expect((await b.done).remote).toBe(true);
    expect(await a.done).toEqual({ remote: false, error: null });
  });

  it('hands frames that arrived before any listener to the first one, in order', async () => {
    const [a, b] = pair();
    await a.send({ type: 'have', piece: 1 });
    await a.send({ type: 'have', piece: 2 });
    await new Promise((r) => setTimeout(r, 20));
    const seen: Frame[] = [];
    const third = new Promise((r) => {
      b.on('frame', (f) => {
        seen.push(f);
        if (seen.length === 3) r(undefined);
      });
    });
    await a.send({ type: 'have', piece: 3 });
    await third;
    expect(seen).toEqual([1, 2, 3].map((piece) => ({ type: 'have', piece })));
  });

  it('waits for drain when the peer reads slowly, and loses nothing', async () => {
    const [a, b] = pair({}, { maxQueuedFrames: 4 }, 16 * 1024);
    const block = Buffer.alloc(256 * 1024, 1);
    let blocked = 0;
    const sending = (async () => {
      for (let i = 0; i < 40; i++) {
        if (!a.write({ type: 'piece', piece: i, offset: 0, data: block })) {
          blocked++;
          await a.drain();
        }
      }
      await a.close();
    })();
    let n = 0;
    for await (const f of b) {
      expect(f.type === 'piece' && f.piece === n && f.data.length === block.length).toBe(true);
      n++;
      if (n % 8 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    await sending;
    expect(n).toBe(40);
    expect(blocked).toBeGreaterThan(0);
  });

  it('answers garbage with a PROTOCOL_ERROR reject and closes', async () => {
    const [a, b] = pair();
    const fromB = collect(a);
    a.stream.write(Buffer.from('00000001ff', 'hex'));
    const info = await b.done;
    expect(info.error?.code).toBe('PROTOCOL_ERROR');
    const frames = await fromB;
    expect(frames).toHaveLength(1);
    expect(frames[0]).toMatchObject({ type: 'reject', request: null, code: 'PROTOCOL_ERROR' });
    await expect(collect(b)).rejects.toMatchObject({ code: 'PROTOCOL_ERROR' });
  });

  it('refuses an oversize length prefix with FRAME_TOO_LARGE', async () => {
    const [a, b] = pair();
    const prefix = Buffer.alloc(4);
    prefix.writeUInt32BE(MAX_FRAME_LENGTH + 1);
    const fromB = collect(a);
    a.stream.write(prefix);
    expect((await b.done).error?.code).toBe('FRAME_TOO_LARGE');
    expect((await fromB)[0]).toMatchObject({ type: 'reject', code: 'FRAME_TOO_LARGE' });
  });

  it('reports a stream that ends mid-frame as truncated', async () => {
    const [a, b] = pair();
    a.stream.end(encodeFrame({ type: 'have', piece: 1 }).subarray(0, 7));
    expect((await b.done).error?.code).toBe('PROTOCOL_ERROR');
  });

  it('close(code, reason) tells the peer why before ending', async () => {
    const [a, b] = pair();
    const fromA = collect(b);
    await a.close('BUSY', 'too many connections');
    expect(await fromA).toEqual([
      { type: 'reject', request: null, code: 'BUSY', reason: 'too many connections' },
    ]);
    expect(a.closeInfo?.error?.code).toBe('BUSY');
    expect(() => a.write({ type: 'keepalive' })).toThrow(/closed/);
    await expect(a.send({ type: 'keepalive' })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  });

  it('sends keepalives when idle and closes a silent peer', async () => {
    const [a, b] = pair(
      { keepaliveIntervalMs: 20, idleTimeoutMs: 0 },
      { keepaliveIntervalMs: 0, idleTimeoutMs: 0 },
    );
    const seen: Frame[] = [];
    b.on('frame', (f) => seen.push(f));
    await new Promise((r) => setTimeout(r, 120));
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((f) => f.type === 'keepalive')).toBe(true);
    a.destroy();

    const [c, d] = pair(
      { keepaliveIntervalMs: 0, idleTimeoutMs: 50 },
      { keepaliveIntervalMs: 0, idleTimeoutMs: 0 },
    );
    expect((await c.done).error?.message).toMatch(/silent/);
    expect((await d.done).remote).toBe(true);
  });

  it("hands a cut-off frame's buffer back to freePayload when the stream goes away", async () => {
    for (const end of ['reset', 'destroy'] as const) {
      const [sa, sb] = duplexPair();
      const allocated: Buffer[] = [];
      const freed: Buffer[] = [];
      const b = new FramedConnection(
        sb,
        {},
        {
          allocatePayload: (length) => {
            allocated.push(Buffer.alloc(length));
            return allocated.at(-1)!;
          },
          freePayload: (buf) => freed.push(buf),
        },
      );
      open.push(b);
      const piece = encodeFrame({ type: 'piece', piece: 0, offset: 0, data: Buffer.alloc(1000, 1) });
      sa.write(piece.subarray(0, 4)); // the prefix alone: the frame's buffer is allocated
      sa.write(piece.subarray(4, 500));
      await until('the frame buffer is allocated', () => allocated.length === 1);
      if (end === 'reset') sa.destroy();
      else b.destroy();
      await b.done;
      expect(freed).toEqual(allocated);
    }
  });

  it('survives the peer resetting the stream', async () => {
    const [a, b] = pair();
    const it = collect(b);
    a.stream.destroy();
    const info = await b.done;
    expect(info.remote).toBe(true);
    await it.catch(() => {});
    expect(b.closed).toBe(true);
  });
});
