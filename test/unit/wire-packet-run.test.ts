import { describe, expect, it } from 'vitest';
import { PacketRun } from '../../src/wire/packet-run.js';

// UDX hands over one packet at a time; PacketRun passes the packets of one event-loop turn on as
// one buffer (wire/udp-endpoint.ts), joining neighbours in UDX's read buffer without a copy.

/** Runs until the turn's flush (setImmediate) has happened. */
const nextTurn = () => new Promise((r) => setImmediate(r));

describe('PacketRun', () => {
  it('passes one turn’s packets on as one buffer, in order, a view where they were neighbours', async () => {
    const got: Buffer[] = [];
    const run = new PacketRun((b) => got.push(b));
    const arena = Buffer.from('abcdefghij');
    run.add(arena.subarray(0, 3));
    run.add(arena.subarray(3, 7));
    expect(got).toEqual([]);
    await nextTurn();
    expect(got.map(String)).toEqual(['abcdefg']);
    // The same memory as the arena: joined, not copied.
    expect(got[0]!.buffer).toBe(arena.buffer);
    expect(got[0]!.byteOffset).toBe(arena.byteOffset);
  });

  it('copies a run that crosses into a new arena, and starts a new run each turn', async () => {
    const got: Buffer[] = [];
    const run = new PacketRun((b) => got.push(b));
    run.add(Buffer.from('one'));
    run.add(Buffer.from('two'));
    await nextTurn();
    run.add(Buffer.from('three'));
    await nextTurn();
    await nextTurn();
    expect(got.map(String)).toEqual(['onetwo', 'three']);
  });

  it('delivers at once when flushed (the stream ends), and nothing twice', async () => {
    const got: Buffer[] = [];
    const run = new PacketRun((b) => got.push(b));
    run.add(Buffer.from('last'));
    run.flush();
    expect(got.map(String)).toEqual(['last']);
    await nextTurn();
    run.flush();
    expect(got).toHaveLength(1);
  });
});
