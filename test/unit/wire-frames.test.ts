import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Bitfield } from '../../src/core/bitfield.js';
import { CoterieError, ERROR_CODES, type ErrorCode } from '../../src/protocol/errors.js';
import { MAX_PIECE_SIZE_BYTES, MAX_PIECES } from '../../src/protocol/manifest.js';
import {
  decodeFrame,
  encodeFrame,
  encodePieceFrameInPlace,
  type Frame,
  FrameDecoder,
  HANDSHAKE_MAX_FRAME_LENGTH,
  MAX_BLOCK_BYTES,
  MAX_FRAME_LENGTH,
  MAX_REASON_BYTES,
  PIECE_FRAME_PREFIX_BYTES,
  SEEDER_HANDSHAKE_MAX_FRAME_LENGTH,
} from '../../src/wire/frames.js';

const A = 'aa'.repeat(32);
const B = 'bb'.repeat(32);

/** Golden bytes: the layout documented at the top of frames.ts, byte for byte. */
const GOLDEN: [string, Frame, string][] = [
  ['keepalive', { type: 'keepalive' }, '00000001 00'],
  [
    'hello',
    { type: 'hello', version: 1, fileId: A, peerId: B, ticket: 'x.y.z' },
    `00000048 01 0001 ${A} ${B} 782e792e7a`,
  ],
  [
    'bitfield',
    { type: 'bitfield', bitfield: Bitfield.fromBuffer(Buffer.from('8040', 'hex'), 10) },
    '00000007 02 0000000a 8040',
  ],
  ['have', { type: 'have', piece: 7 }, '00000005 03 00000007'],
  [
    'request',
    { type: 'request', piece: 1, offset: 16384, length: 16384 },
    '0000000d 04 00000001 00004000 00004000',
  ],
  [
    'piece',
    { type: 'piece', piece: 2, offset: 0, data: Buffer.from('abc') },
    '0000000c 05 00000002 00000000 616263',
  ],
  [
    'cancel',
    { type: 'cancel', piece: 1, offset: 16384, length: 16384 },
    '0000000d 06 00000001 00004000 00004000',
  ],
  [
    'reject (request)',
    {
      type: 'reject',
      request: { piece: 1, offset: 0, length: 16384 },
      code: 'PIECE_UNAVAILABLE',
      reason: 'no',
    },
    `00000024 07 01 00000001 00000000 00004000 11 ${Buffer.from('PIECE_UNAVAILABLE').toString('hex')} 0002 6e6f`,
  ],
  ['corrupt', { type: 'corrupt', fileId: A, piece: 258 }, `00000025 09 ${A} 00000102`],
  [
    'reject (connection)',
    { type: 'reject', request: null, code: 'BUSY', reason: '' },
    `00000015 07 00 00000000 00000000 00000000 04 ${Buffer.from('BUSY').toString('hex')} 0000`,
  ],
  ['ticket', { type: 'ticket', ticket: 'x.y.z' }, '00000006 08 782e792e7a'],
  ['order', { type: 'order' }, '00000001 0a'],
  ['ping', { type: 'ping', nonce: 0x01020304 }, '00000005 0b 01020304'],
  ['pong', { type: 'pong', nonce: 7 }, '00000005 0c 00000007'],
];

const hex = (s: string) => Buffer.from(s.replaceAll(' ', ''), 'hex');

function normalize(f: Frame): unknown {
  if (f.type === 'bitfield') return { type: 'bitfield', n: f.bitfield.length, bits: f.bitfield.toBuffer() };
  if (f.type === 'piece') return { ...f, data: Buffer.from(f.data) };
  return f;
}

const u32Piece = fc.nat({ max: MAX_PIECES - 1 });
const block = fc
  .record({ piece: u32Piece, length: fc.integer({ min: 1, max: MAX_BLOCK_BYTES }) })
  .chain(({ piece, length }) =>
    fc.record({
      piece: fc.constant(piece),
      length: fc.constant(length),
      offset: fc.nat({ max: MAX_PIECE_SIZE_BYTES - length }),
    }),
  );
const hex64 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex'));
const arbFrame: fc.Arbitrary<Frame> = fc.oneof(
  fc.constant<Frame>({ type: 'keepalive' }),
  fc.constant<Frame>({ type: 'order' }),
  fc.record({ type: fc.constant('ping' as const), nonce: fc.nat() }),
  fc.record({ type: fc.constant('pong' as const), nonce: fc.nat() }),
  fc.record({
    type: fc.constant('hello' as const),
    version: fc.nat({ max: 0xffff }),
    fileId: hex64,
    peerId: hex64,
    ticket: fc.stringMatching(/^[A-Za-z0-9_.-]{0,300}$/),
  }),
  fc
    .integer({ min: 0, max: 200 })
    .chain((n) => fc.tuple(fc.constant(n), fc.array(fc.nat({ max: Math.max(0, n - 1) }), { maxLength: n })))
    .map(([n, set]): Frame => {
      const bitfield = new Bitfield(n);
      for (const i of set) if (i < n) bitfield.set(i);
      return { type: 'bitfield', bitfield };
    }),
  fc.record({ type: fc.constant('have' as const), piece: u32Piece }),
  block.map((b): Frame => ({ type: 'request', ...b })),
  block.map((b): Frame => ({ type: 'cancel', ...b })),
  fc
    .record({
      piece: u32Piece,
      offset: fc.nat({ max: 1 << 20 }),
      data: fc.uint8Array({ minLength: 1, maxLength: 2048 }).map((d) => Buffer.from(d)),
    })
    .map((p): Frame => ({ type: 'piece', ...p })),
  fc.record({ type: fc.constant('corrupt' as const), fileId: hex64, piece: u32Piece }),
  fc.record({
    type: fc.constant('reject' as const),
    request: fc.option(block, { nil: null }),
    code: fc.constantFrom<ErrorCode>(...ERROR_CODES),
    reason: fc.string({ maxLength: 100 }),
  }),
  fc.record({ type: fc.constant('ticket' as const), ticket: fc.stringMatching(/^[A-Za-z0-9_.-]{1,300}$/) }),
);

/** Splits bytes at arbitrary points, like TCP does. */
function chunked(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of [...points, bytes.length]) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  return out;
}

function expectNoThrowDecode(chunks: Buffer[], decoder = new FrameDecoder()): Frame[] {
  const frames: Frame[] = [];
  for (const c of chunks) {
    const r = decoder.push(c);
    frames.push(...r.frames);
    if (r.error !== null) {
      expect(r.error).toBeInstanceOf(CoterieError);
      expect(['PROTOCOL_ERROR', 'FRAME_TOO_LARGE']).toContain(r.error.code);
      break;
    }
  }
  return frames;
}

/**
 * Feeds bytes the way a placed-read transport does (placed-reads.ts): each
 * read copies at most `sizes[i]` bytes into the decoder's read target and
 * commits them; a read marked `pushed` arrives as a chunk instead (bytes that
 * landed before the connection attached). Stops at the first error.
 */
function placedDecode(
  bytes: Buffer,
  reads: Array<{ size: number; pushed: boolean }>,
  decoder = new FrameDecoder(),
): { frames: Frame[]; error: CoterieError | null } {
  const frames: Frame[] = [];
  let pos = 0;
  for (let i = 0; pos < bytes.length; i++) {
    const read = reads[i % Math.max(reads.length, 1)] ?? { size: 16384, pushed: false };
    let r: ReturnType<FrameDecoder['push']>;
    if (read.pushed) {
      const n = Math.min(read.size, bytes.length - pos);
      r = decoder.push(bytes.subarray(pos, pos + n));
      pos += n;
    } else {
      const target = decoder.readTarget();
      expect(target.length).toBeGreaterThan(0);
      const n = bytes.copy(target, 0, pos, pos + Math.min(read.size, target.length));
      pos += n;
      r = decoder.commit(n);
    }
    frames.push(...r.frames);
    if (r.error !== null) return { frames, error: r.error };
  }
  return { frames, error: decoder.end() };
}

const arbReads = fc.array(fc.record({ size: fc.integer({ min: 1, max: 3000 }), pushed: fc.boolean() }), {
  maxLength: 12,
});

describe('wire frames', () => {
  for (const [name, frame, bytes] of GOLDEN) {
    it(`encodes and decodes ${name} as its golden bytes`, () => {
      expect(encodeFrame(frame).toString('hex')).toBe(hex(bytes).toString('hex'));
      expect(normalize(decodeFrame(hex(bytes)))).toEqual(normalize(frame));
    });
  }

  it('refuses a corrupt report that is truncated, too long or past the last possible piece', () => {
    const good = hex(`00000025 09 ${A} 00000102`);
    expect(() => decodeFrame(hex(`00000024 09 ${A} 000001`))).toThrow(/truncated/);
    expect(() => decodeFrame(hex(`00000026 09 ${A} 00000102 00`))).toThrow(/trailing/);
    const past = Buffer.from(good);
    past.writeUInt32BE(MAX_PIECES, 4 + 1 + 32);
    expect(() => decodeFrame(past)).toThrow(CoterieError);
    expect(() => encodeFrame({ type: 'corrupt', fileId: 'nothex', piece: 0 })).toThrow(/hex/);
  });

  it('round-trips any frame, whole or in arbitrary chunks', () => {
    fc.assert(
      fc.property(
        fc.array(arbFrame, { maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (frames, cuts) => {
          const bytes = Buffer.concat(frames.map(encodeFrame));
          const decoder = new FrameDecoder();
          const out: Frame[] = [];
          for (const c of chunked(bytes, cuts)) {
            const r = decoder.push(c);
            expect(r.error).toBeNull();
            out.push(...r.frames);
          }
          expect(decoder.end()).toBeNull();
          expect(out.map(normalize)).toEqual(frames.map(normalize));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('decodes the same frames when reads are placed into its buffers, mixed with pushed chunks', () => {
    fc.assert(
      fc.property(fc.array(arbFrame, { maxLength: 8 }), arbReads, (frames, reads) => {
        const bytes = Buffer.concat(frames.map(encodeFrame));
        const out = placedDecode(bytes, reads);
        expect(out.error).toBeNull();
        expect(out.frames.map(normalize)).toEqual(frames.map(normalize));
      }),
      { numRuns: 300 },
    );
  });

  it('places a frame that spans reads in the buffer from allocate, so its data is not copied again', () => {
    const slot = Buffer.alloc(64 * 1024);
    const decoder = new FrameDecoder({ allocate: (length) => slot.subarray(100, 100 + length) });
    const data = Buffer.alloc(40_000, 7);
    const bytes = encodeFrame({ type: 'piece', piece: 3, offset: 0, data });
    const placed = placedDecode(bytes, [{ size: 16384, pushed: false }], decoder);
    expect(placed.error).toBeNull();
    expect(placed.frames).toHaveLength(1);
    const frame = placed.frames[0] as Frame & { type: 'piece' };
    // The data is a view of the slot at 100 + type byte + piece + offset: the bytes were written there once.
    expect(frame.data.buffer).toBe(slot.buffer);
    expect(frame.data.byteOffset).toBe(slot.byteOffset + 100 + 9);
    expect(frame.data.equals(data)).toBe(true);
  });

  it('builds a piece frame in place around data already read past the header room', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: MAX_PIECES - 1 }),
        fc.nat({ max: 1 << 20 }),
        fc.uint8Array({ minLength: 1, maxLength: 4096 }),
        (piece, offset, data) => {
          const framed = Buffer.alloc(PIECE_FRAME_PREFIX_BYTES + data.length, 0xee);
          framed.set(data, PIECE_FRAME_PREFIX_BYTES);
          const expected = encodeFrame({ type: 'piece', piece, offset, data: Buffer.from(data) });
          expect(encodePieceFrameInPlace(framed, piece, offset).equals(expected)).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
    expect(() => encodePieceFrameInPlace(Buffer.alloc(PIECE_FRAME_PREFIX_BYTES), 0, 0)).toThrow(
      /block length/,
    );
    expect(() => encodePieceFrameInPlace(Buffer.alloc(PIECE_FRAME_PREFIX_BYTES + 1), MAX_PIECES, 0)).toThrow(
      CoterieError,
    );
  });

  it('hands back the buffer of a frame cut off, or refused once whole, through abandon()', () => {
    const slots: Buffer[] = [];
    const allocate = (length: number) => {
      slots.push(Buffer.alloc(length));
      return slots.at(-1)!;
    };
    const cut = new FrameDecoder({ allocate });
    cut.push(encodeFrame({ type: 'piece', piece: 1, offset: 0, data: Buffer.alloc(100) }).subarray(0, 50));
    expect(cut.abandon()).toBe(slots[0]);
    expect(cut.abandon()).toBeNull();
    const refused = new FrameDecoder({ allocate });
    const bad = encodeFrame({ type: 'piece', piece: 1, offset: 0, data: Buffer.alloc(100) });
    bad[4] = 0x7f; // unknown type, found only once the whole frame is in
    expect(refused.push(bad.subarray(0, 50)).error).toBeNull();
    expect(refused.push(bad.subarray(50)).error?.code).toBe('PROTOCOL_ERROR');
    expect(refused.abandon()).toBe(slots[1]);
  });

  it('refuses a commit larger than its read target without throwing', () => {
    const d = new FrameDecoder();
    const r = d.commit(5);
    expect(r.error?.code).toBe('PROTOCOL_ERROR');
    expect(d.commit(1).error).toBe(r.error);
  });

  it('never throws on random bytes, only reports a CoterieError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.array(fc.nat(), { maxLength: 10 }), (bytes, cuts) => {
        expectNoThrowDecode(chunked(Buffer.from(bytes), cuts));
      }),
      { numRuns: 1000 },
    );
  });

  it('never throws on random bytes placed into its buffers', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), arbReads, (bytes, reads) => {
        const decoder = new FrameDecoder();
        const { error } = placedDecode(Buffer.from(bytes), reads, decoder);
        if (error !== null) expect(['PROTOCOL_ERROR', 'FRAME_TOO_LARGE']).toContain(error.code);
        // Failed or not, the transport always gets somewhere to put bytes (an empty target hangs it).
        expect(decoder.readTarget().length).toBeGreaterThan(0);
      }),
      { numRuns: 1000 },
    );
  });

  it('never throws on mutated valid frames', () => {
    fc.assert(
      fc.property(
        fc.array(arbFrame, { minLength: 1, maxLength: 4 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        (frames, mutations, cuts) => {
          const bytes = Buffer.concat(frames.map(encodeFrame));
          for (const [at, value] of mutations) bytes[at % bytes.length] = value;
          const decoded = expectNoThrowDecode(chunked(bytes, cuts));
          // whatever decoded must re-encode: the decoder only lets valid frames through
          for (const f of decoded) expect(() => encodeFrame(f)).not.toThrow();
        },
      ),
      { numRuns: 500 },
    );
  });

  it('refuses an oversize frame on its length prefix, before buffering the body', () => {
    const d = new FrameDecoder();
    const prefix = Buffer.alloc(4);
    prefix.writeUInt32BE(MAX_FRAME_LENGTH + 1);
    const r = d.push(prefix);
    expect(r.error?.code).toBe('FRAME_TOO_LARGE');
    expect(d.bufferedBytes).toBe(0);
    // and stays failed
    expect(d.push(encodeFrame({ type: 'keepalive' })).frames).toEqual([]);

    const small = new FrameDecoder({ maxFrameLength: HANDSHAKE_MAX_FRAME_LENGTH });
    const big = encodeFrame({
      type: 'piece',
      piece: 0,
      offset: 0,
      data: Buffer.alloc(HANDSHAKE_MAX_FRAME_LENGTH),
    });
    expect(small.push(big.subarray(0, 4)).error?.code).toBe('FRAME_TOO_LARGE');
    // 0xffffffff must not wrap to a negative number
    expect(new FrameDecoder().push(hex('ffffffff')).error?.code).toBe('FRAME_TOO_LARGE');
  });

  it('reports truncated, empty, unknown and out-of-range frames as PROTOCOL_ERROR', () => {
    const bad: [string, string][] = [
      ['empty frame', '00000000'],
      ['unknown type', '00000001 63'],
      ['order with a body', '00000002 0a 00'],
      ['have too short', '00000004 03 000000'],
      ['have too long', '00000006 03 00000001 00'],
      ['have out of range', '00000005 03 00100000'],
      ['request of zero bytes', '0000000d 04 00000001 00000000 00000000'],
      ['request above the block size', '0000000d 04 00000001 00000000 00100001'],
      ['request past the largest piece', '0000000d 04 00000001 00ffc000 00008000'],
      ['piece with no data', '00000009 05 00000001 00000000'],
      ['bitfield length mismatch', '00000006 02 0000000a 80'],
      ['bitfield spare bits', '00000007 02 0000000a 8020'],
      ['bitfield too many pieces', '00000005 02 00100001'],
      ['hello truncated', '00000010 01 0001 aaaaaaaaaaaaaaaaaaaaaaaaaaaa'],
      ['hello bad ticket', `00000046 01 0001 ${A} ${B} 7e7e7e`],
      ['ticket empty', '00000001 08'],
      ['ticket not a compact JWS', '00000004 08 782079'],
      ['ticket with a NUL', '00000003 08 7800'],
      ['ticket too long', `00001002 08 ${'61'.repeat(4097)}`],
      [
        'reject unknown flag',
        `00000015 07 02 00000000 00000000 00000000 04 ${Buffer.from('BUSY').toString('hex')} 0000`,
      ],
      [
        'reject unknown code',
        `00000015 07 00 00000000 00000000 00000000 04 ${Buffer.from('NOPE').toString('hex')} 0000`,
      ],
      [
        'reject reason overruns',
        `00000015 07 00 00000000 00000000 00000000 04 ${Buffer.from('BUSY').toString('hex')} 0005`,
      ],
    ];
    for (const [what, bytes] of bad) {
      const r = new FrameDecoder().push(hex(bytes));
      expect(r.error?.code, what).toBe('PROTOCOL_ERROR');
      expect(() => decodeFrame(hex(bytes)), what).toThrow(CoterieError);
    }
    const d = new FrameDecoder();
    expect(d.push(encodeFrame({ type: 'have', piece: 1 }).subarray(0, 6)).error).toBeNull();
    expect(d.midFrame).toBe(true);
    expect(d.end()?.code).toBe('PROTOCOL_ERROR');
  });

  it('cuts long reject reasons without splitting a character', () => {
    const f = decodeFrame(
      encodeFrame({ type: 'reject', request: null, code: 'BUSY', reason: 'é'.repeat(300) }),
    );
    expect(f.type === 'reject' && Buffer.byteLength(f.reason)).toBeLessThanOrEqual(MAX_REASON_BYTES);
    expect(f.type === 'reject' && f.reason).toBe('é'.repeat(MAX_REASON_BYTES / 2));
  });

  it('refuses to encode frames that break the layout', () => {
    expect(() => encodeFrame({ type: 'have', piece: -1 })).toThrow(CoterieError);
    expect(() => encodeFrame({ type: 'piece', piece: 0, offset: 0, data: Buffer.alloc(0) })).toThrow(
      CoterieError,
    );
    expect(() => encodeFrame({ type: 'hello', version: 1, fileId: 'x', peerId: B, ticket: '' })).toThrow(
      CoterieError,
    );
    expect(() =>
      encodeFrame({ type: 'piece', piece: 0, offset: 0, data: Buffer.alloc(MAX_BLOCK_BYTES + 1) }),
    ).toThrow(CoterieError);
  });

  it('carries a full block in one frame of exactly MAX_FRAME_LENGTH', () => {
    const data = Buffer.alloc(MAX_BLOCK_BYTES, 7);
    const bytes = encodeFrame({
      type: 'piece',
      piece: MAX_PIECES - 1,
      offset: MAX_PIECE_SIZE_BYTES - MAX_BLOCK_BYTES,
      data,
    });
    expect(bytes.readUInt32BE(0)).toBe(MAX_FRAME_LENGTH);
    const f = decodeFrame(bytes);
    expect(f.type === 'piece' && f.data.equals(data)).toBe(true);
  });

  it('carries a bitfield of MAX_PIECES (a 100,000-file tree needs more than 65,536) behind the hello in one read', () => {
    const bits = new Bitfield(MAX_PIECES);
    for (const i of [0, 65_535, 65_536, 100_000, MAX_PIECES - 1]) bits.set(i);
    const hello: Frame = { type: 'hello', version: 1, fileId: A, peerId: B, ticket: '' };
    const both = Buffer.concat([encodeFrame(hello), encodeFrame({ type: 'bitfield', bitfield: bits })]);
    expect(both.readUInt32BE(encodeFrame(hello).length)).toBe(SEEDER_HANDSHAKE_MAX_FRAME_LENGTH);
    // What a downloader's decoder takes before it has handled the seeder's hello.
    const frames = expectNoThrowDecode(
      [both],
      new FrameDecoder({ maxFrameLength: SEEDER_HANDSHAKE_MAX_FRAME_LENGTH }),
    );
    const got = frames[1];
    expect(got?.type === 'bitfield' && got.bitfield.length).toBe(MAX_PIECES);
    expect(got?.type === 'bitfield' && [...got.bitfield.toBuffer()].filter((b) => b !== 0).length).toBe(5);
    expect(got?.type === 'bitfield' && got.bitfield.has(100_000) && !got.bitfield.has(99_999)).toBe(true);
    // A seeder still takes nothing near that size from a downloader.
    expect(() => decodeFrame(both.subarray(encodeFrame(hello).length), HANDSHAKE_MAX_FRAME_LENGTH)).toThrow(
      CoterieError,
    );
  });
});
