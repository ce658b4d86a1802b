import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { CoterieError } from '../../src/protocol/errors.js';
import {
  MAX_SESSION_FEATURES,
  MAX_SESSION_FRAME_BYTES,
  parseClientMessage,
  parseTrackerMessage,
  SESSION_PROTOCOL_VERSION,
} from '../../src/protocol/session.js';

const PEER = 'a'.repeat(64);

describe('session protocol codec', () => {
  it('accepts well-formed client messages', () => {
    const hello = {
      type: 'hello',
      v: SESSION_PROTOCOL_VERSION,
      peerId: PEER,
      addresses: ['127.0.0.1:1'],
      seeding: [],
    };
    expect(parseClientMessage(JSON.stringify(hello))).toEqual(hello);
    // A newer peer's hello, asking for something this tracker does not know: welcomed all the same.
    expect(parseClientMessage(JSON.stringify({ ...hello, futureFeature: true }))).toMatchObject(hello);
    expect(parseClientMessage(Buffer.from('{"type":"ping","id":3}'))).toEqual({ type: 'ping', id: 3 });
    expect(
      parseTrackerMessage(`{"type":"seeder_left","fileId":"${PEER}","peerId":"${PEER}","at":1}`),
    ).toMatchObject({
      type: 'seeder_left',
    });
  });

  it('reads a frame from each shape ws hands over, and a Buffer without copying it first', () => {
    const ping = '{"type":"ping","id":3}';
    const bytes = Buffer.from(ping);
    const arrayBuffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    const copies = vi.spyOn(Buffer, 'from');
    try {
      expect(parseClientMessage(bytes)).toEqual({ type: 'ping', id: 3 });
      expect(copies).not.toHaveBeenCalled();
      expect(parseClientMessage(arrayBuffer)).toEqual({ type: 'ping', id: 3 });
      expect(parseClientMessage([bytes.subarray(0, 5), bytes.subarray(5)])).toEqual({ type: 'ping', id: 3 });
    } finally {
      copies.mockRestore();
    }
  });

  it('rejects anything else with PROTOCOL_ERROR or FRAME_TOO_LARGE, never another error', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.jsonValue().map((v) => JSON.stringify(v)),
        ),
        (raw) => {
          try {
            parseClientMessage(raw);
          } catch (err) {
            expect(err).toBeInstanceOf(CoterieError);
            expect(['PROTOCOL_ERROR', 'FRAME_TOO_LARGE']).toContain((err as CoterieError).code);
          }
        },
      ),
    );
    expect(() =>
      parseClientMessage('{"type":"hello","v":1,"peerId":"x","addresses":[],"seeding":[]}'),
    ).toThrow(/peerId/);
    expect(() => parseClientMessage('x'.repeat(MAX_SESSION_FRAME_BYTES + 1))).toThrow(/exceeds/);
    expect(() => parseClientMessage('{"type":"ping","extra":1}')).toThrow(CoterieError);
  });

  it('reads enable frames and refuses bad ones with PROTOCOL_ERROR, never another error', () => {
    const enable = { type: 'enable', id: 7, features: ['sentBatches', 'receiptBatches'] };
    expect(parseClientMessage(JSON.stringify(enable))).toEqual(enable);
    // A well-formed name the tracker does not offer parses: the tracker refuses it, with a message.
    expect(parseClientMessage('{"type":"enable","features":["later"]}')).toMatchObject({ type: 'enable' });
    for (const bad of [
      '{"type":"enable"}',
      '{"type":"enable","features":[]}',
      '{"type":"enable","features":"sentBatches"}',
      '{"type":"enable","features":["sent-batches"]}',
      '{"type":"enable","features":[""]}',
      `{"type":"enable","features":["${'a'.repeat(33)}"]}`,
      `{"type":"enable","features":${JSON.stringify(Array(MAX_SESSION_FEATURES + 1).fill('a'))}}`,
      '{"type":"enable","features":["sentBatches"],"more":1}',
      '{"type":"enable","id":{},"features":["sentBatches"]}',
    ]) {
      expect(() => parseClientMessage(bad), bad).toThrow(CoterieError);
    }
    // Frames shaped like an enable, with every kind of value in each field.
    const anything = fc.oneof(
      fc.jsonValue(),
      fc.string(),
      fc.array(fc.string({ maxLength: 40 }), { maxLength: 40 }),
      fc.array(fc.stringMatching(/^[A-Za-z][A-Za-z0-9]{0,33}$/), { maxLength: MAX_SESSION_FEATURES + 2 }),
    );
    fc.assert(
      fc.property(
        fc.record(
          { type: fc.constant('enable'), id: anything, features: anything, extra: anything },
          { requiredKeys: ['type'] },
        ),
        (frame) => {
          try {
            const m = parseClientMessage(JSON.stringify(frame));
            expect(m.type).toBe('enable');
            const features = (m as { features: string[] }).features;
            expect(features.length).toBeGreaterThan(0);
            expect(features.length).toBeLessThanOrEqual(MAX_SESSION_FEATURES);
            for (const f of features) expect(f).toMatch(/^[A-Za-z][A-Za-z0-9]{0,31}$/);
          } catch (err) {
            expect(err).toBeInstanceOf(CoterieError);
            expect((err as CoterieError).code).toBe('PROTOCOL_ERROR');
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("reads a welcome's feature list, names it does not know included, and a welcome without one", () => {
    const welcome = {
      type: 'welcome',
      v: 1,
      sessionId: 's',
      trackerId: 't',
      userId: 'u',
      peerId: PEER,
      heartbeatIntervalMs: 1,
      heartbeatTimeoutMs: 1,
    };
    expect(parseTrackerMessage(JSON.stringify(welcome))).toEqual(welcome);
    const later = { ...welcome, features: ['sentBatches', 'some-later-feature', 'x'.repeat(100)] };
    expect(parseTrackerMessage(JSON.stringify(later))).toEqual(later);
  });
});
