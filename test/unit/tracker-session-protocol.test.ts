import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { CoterieError } from '../../src/protocol/errors.js';
import {
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
});
