import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { BlockPool } from '../../src/wire/block-pool.js';
import { FramedConnection } from '../../src/wire/connection.js';

const KiB = 1024;

describe('BlockPool', () => {
  it('reuses a buffer only after its lease is released', () => {
    const pool = new BlockPool({ maxBytes: 1024 * KiB });
    const a = pool.lease(256 * KiB);
    const b = pool.lease(256 * KiB);
    expect(b.buffer.buffer).not.toBe(a.buffer.buffer);
    expect(a.buffer.length).toBe(256 * KiB);
    a.release();
    const c = pool.lease(256 * KiB);
    expect(c.buffer).toBe(a.buffer);
    expect(pool.stats()).toMatchObject({ allocated: 2, reused: 1, leased: 2, unpooled: 0 });
  });

  it('never lends one buffer twice at once, even when a lease is released twice', () => {
    const pool = new BlockPool({ maxBytes: 1024 * KiB });
    const a = pool.lease(64 * KiB);
    a.release();
    a.release();
    const b = pool.lease(64 * KiB);
    const c = pool.lease(64 * KiB);
    expect(b.buffer).toBe(a.buffer);
    expect(c.buffer).not.toBe(b.buffer);
    // The stale lease's second release must not free b's buffer either.
    a.release();
    const d = pool.lease(64 * KiB);
    expect(d.buffer).not.toBe(b.buffer);
    expect(d.buffer).not.toBe(c.buffer);
    expect(pool.stats().leased).toBe(3);
  });

  it('owns at most maxBytes: drops free buffers of other sizes, then lends unpooled ones', () => {
    const pool = new BlockPool({ maxBytes: 512 * KiB });
    const small = pool.lease(100 * KiB);
    small.release();
    const x = pool.lease(256 * KiB);
    const y = pool.lease(256 * KiB); // the free 100 KiB one is dropped to make room
    expect(pool.stats()).toMatchObject({ ownedBytes: 512 * KiB, freeBytes: 0, allocated: 3 });
    const z = pool.lease(256 * KiB); // full: an unpooled buffer, not a wait
    expect(z.buffer.length).toBe(256 * KiB);
    expect(pool.stats()).toMatchObject({ ownedBytes: 512 * KiB, unpooled: 1, leased: 3 });
    z.release();
    x.release();
    y.release();
    // The unpooled one is not kept: the pool still owns only its two.
    expect(pool.stats()).toMatchObject({ ownedBytes: 512 * KiB, freeBytes: 512 * KiB, leased: 0 });
    const again = [pool.lease(256 * KiB), pool.lease(256 * KiB)];
    expect(pool.stats()).toMatchObject({ allocated: 3, reused: 2 });
    for (const l of again) l.release();
    pool.trim();
    expect(pool.stats()).toMatchObject({ ownedBytes: 0, freeBytes: 0 });
  });

  it('refuses a bad length', () => {
    const pool = new BlockPool({ maxBytes: KiB });
    expect(() => pool.lease(0)).toThrow(RangeError);
    expect(() => pool.lease(1.5)).toThrow(RangeError);
  });
});

describe('FramedConnection write callback with pooled blocks', () => {
  it('calls back only once the stream has taken the bytes', async () => {
    // A writable that holds each chunk until we let it go: the kernel or TLS layer, in slow motion.
    const held: Array<() => void> = [];
    const stream = new PassThrough({
      highWaterMark: 1,
      write(_chunk, _enc, cb) {
        held.push(cb);
      },
    });
    const conn = new FramedConnection(stream, { keepaliveIntervalMs: 0, idleTimeoutMs: 0 });
    const pool = new BlockPool({ maxBytes: 1024 * KiB });
    const lease = pool.lease(32 * KiB);
    let written = false;
    conn.write({ type: 'piece', piece: 0, offset: 0, data: lease.buffer }, () => {
      written = true;
      lease.release();
    });
    await new Promise((r) => setImmediate(r));
    expect(written).toBe(false);
    // While in flight, a new lease gets another buffer.
    const other = pool.lease(32 * KiB);
    expect(other.buffer).not.toBe(lease.buffer);
    while (held.length > 0) held.shift()!();
    await new Promise((r) => setImmediate(r));
    expect(written).toBe(true);
    expect(pool.lease(32 * KiB).buffer).toBe(lease.buffer);
    conn.destroy();
  });

  it('does not call back when write throws on a closed connection', async () => {
    const stream = new PassThrough();
    const conn = new FramedConnection(stream, { keepaliveIntervalMs: 0, idleTimeoutMs: 0 });
    conn.destroy();
    let called = false;
    expect(() =>
      conn.write({ type: 'piece', piece: 0, offset: 0, data: Buffer.alloc(8) }, () => {
        called = true;
      }),
    ).toThrow(expect.objectContaining({ code: 'UNAVAILABLE' }));
    await new Promise((r) => setImmediate(r));
    expect(called).toBe(false);
  });
});
