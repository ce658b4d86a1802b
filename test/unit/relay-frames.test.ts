import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CoterieError } from '../../src/protocol/errors.js';
import {
  encodeRelayFrame,
  formatRelayAddress,
  MAX_RELAY_FRAME_BYTES,
  parseRelayAddress,
  parseRelayEndpoint,
  type RelayClientFrame,
  RelayFrameDecoder,
  type RelayServerFrame,
  relayFrameChecks,
} from '../../src/protocol/relay.js';

const checks = await relayFrameChecks();

const hex64 = fc.stringMatching(/^[0-9a-f]{64}$/);
const token = fc.string({ minLength: 1, maxLength: 256 });
const clientFrame: fc.Arbitrary<RelayClientFrame> = fc.oneof(
  fc.record({ t: fc.constant('reserve' as const), v: fc.constant(2), token, peerId: hex64 }),
  fc.record({ t: fc.constant('connect' as const), v: fc.constant(2), token, peerId: hex64, target: hex64 }),
  fc.record({
    t: fc.constant('accept' as const),
    v: fc.constant(2),
    token,
    circuit: fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/),
  }),
);

/** Cuts `bytes` at the given points and feeds the pieces one by one. */
function feed<F extends RelayClientFrame | RelayServerFrame>(
  d: RelayFrameDecoder<F>,
  bytes: Buffer,
  cuts: number[],
): F[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: F[] = [];
  let at = 0;
  for (const p of [...points, bytes.length]) {
    out.push(...d.push(bytes.subarray(at, p)));
    at = p;
  }
  return out;
}

describe('relay frames', () => {
  it('round-trip whatever way the bytes are cut', () => {
    fc.assert(
      fc.property(
        fc.array(clientFrame, { minLength: 1, maxLength: 4 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        (frames, cuts) => {
          // Reserves only, since a connect or accept hands the rest of the stream over.
          const reserves = frames.map((f) =>
            f.t === 'reserve' ? f : { ...f, t: 'reserve' as const, peerId: 'a'.repeat(64) },
          );
          const clean = reserves.map(
            ({ t, v, token: tk, peerId }) => ({ t, v, token: tk, peerId }) as RelayClientFrame,
          );
          const bytes = Buffer.concat(clean.map(encodeRelayFrame));
          expect(feed(new RelayFrameDecoder<RelayClientFrame>('client', checks), bytes, cuts)).toEqual(clean);
        },
      ),
    );
  });

  it('stop at a hand-over and give the circuit its bytes back untouched', () => {
    fc.assert(
      fc.property(
        hex64,
        fc.uint8Array({ maxLength: 300 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        (peer, tail, cuts) => {
          const d = new RelayFrameDecoder<RelayServerFrame>('server', checks);
          const connected: RelayServerFrame = { t: 'connected', peer };
          const bytes = Buffer.concat([encodeRelayFrame(connected), Buffer.from(tail)]);
          const seen: RelayServerFrame[] = [];
          let rest: Buffer = Buffer.alloc(0);
          const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
          let at = 0;
          for (const p of [...points, bytes.length]) {
            const chunk = bytes.subarray(at, p);
            at = p;
            if (seen.length > 0) rest = Buffer.concat([rest, chunk]);
            else {
              seen.push(...d.push(chunk));
              if (seen.length > 0) rest = d.rest();
            }
          }
          expect(seen).toEqual([connected]);
          expect(Buffer.compare(rest, Buffer.from(tail))).toBe(0);
        },
      ),
    );
  });

  it('never throws anything but a coded error on arbitrary bytes, and never buffers past one frame', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 600 }), { maxLength: 12 }), (chunks) => {
        const d = new RelayFrameDecoder<RelayClientFrame>('client', checks);
        try {
          for (const c of chunks) d.push(Buffer.from(c));
        } catch (err) {
          expect(err).toBeInstanceOf(CoterieError);
          expect(['PROTOCOL_ERROR', 'FRAME_TOO_LARGE']).toContain((err as CoterieError).code);
          return;
        }
        expect(d.rest().length).toBeLessThanOrEqual(2 + MAX_RELAY_FRAME_BYTES);
      }),
      { numRuns: 500 },
    );
  });

  it('refuse a length over the maximum before buffering it, and a zero length', () => {
    const d = new RelayFrameDecoder<RelayClientFrame>('client', checks);
    const head = Buffer.alloc(2);
    head.writeUInt16BE(MAX_RELAY_FRAME_BYTES + 1);
    expect(() => d.push(head)).toThrowError(expect.objectContaining({ code: 'FRAME_TOO_LARGE' }));
    expect(() => new RelayFrameDecoder('client', checks).push(Buffer.from([0, 0]))).toThrowError(
      expect.objectContaining({ code: 'FRAME_TOO_LARGE' }),
    );
  });

  it('refuse frames of the other side, unknown fields and bad JSON', () => {
    const server = encodeRelayFrame({ t: 'connected', peer: 'b'.repeat(64) });
    expect(() => new RelayFrameDecoder('client', checks).push(server)).toThrowError(
      expect.objectContaining({ code: 'PROTOCOL_ERROR' }),
    );
    const extra = Buffer.from(
      JSON.stringify({ t: 'reserve', v: 1, token: 'x', peerId: 'a'.repeat(64), more: 1 }),
    );
    const framed = Buffer.concat([Buffer.from([0, extra.length]), extra]);
    expect(() => new RelayFrameDecoder('client', checks).push(framed)).toThrowError(
      expect.objectContaining({ code: 'PROTOCOL_ERROR' }),
    );
    expect(() =>
      new RelayFrameDecoder('client', checks).push(Buffer.from([0, 3, 0x7b, 0x7b, 0x7b])),
    ).toThrowError(expect.objectContaining({ code: 'PROTOCOL_ERROR' }));
  });

  it('spell relayed addresses relay://host:port#sha256=…, and nothing else parses as one', () => {
    const fp = 'ab'.repeat(32);
    expect(formatRelayAddress({ host: '198.18.0.2', port: 7072, fingerprint: fp })).toBe(
      `relay://198.18.0.2:7072#sha256=${fp}`,
    );
    expect(parseRelayAddress(`relay://[::1]:9#sha256=${fp}`)).toEqual({
      host: '::1',
      port: 9,
      fingerprint: fp,
    });
    expect(parseRelayEndpoint(`198.18.0.2:7072#sha256=${fp}`)).toEqual({
      host: '198.18.0.2',
      port: 7072,
      fingerprint: fp,
    });
    // Unpinned (protocol 1's spelling): not a relay a peer would send its token to.
    expect(parseRelayAddress('relay://198.18.0.2:7072')).toBeUndefined();
    expect(parseRelayEndpoint('198.18.0.2:7072')).toBeUndefined();
    expect(parseRelayAddress(`198.18.0.2:7072#sha256=${fp}`)).toBeUndefined();
    expect(parseRelayAddress(`relay://nope#sha256=${fp}`)).toBeUndefined();
  });
});
