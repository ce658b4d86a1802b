import { afterEach, describe, expect, it, vi } from 'vitest';
import { Bitfield } from '../../src/core/bitfield.js';
import type { CoterieError } from '../../src/protocol/errors.js';
import {
  type Dial,
  dialPieceClient,
  type Frame,
  FramedConnection,
  PieceClient,
  PROTOCOL_VERSION,
} from '../../src/wire/index.js';
import { HAVE_HOLD_MS } from '../../src/wire/piece-client.js';
import { duplexPair } from '../helpers/duplex-pair.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { until } from '../helpers/wait.js';

// The downloader's half of the wire protocol against a hand-driven seeder over an in-memory pair;
// every timing from a fake clock. Against real piece servers: peer-download-swarm.test.ts.

const FILE = 'f'.repeat(64);
const ME = 'a'.repeat(64);
const SEEDER = 'b'.repeat(64);

const open: Array<{ destroy(): void }> = [];
afterEach(() => {
  for (const c of open.splice(0)) c.destroy();
});

function setup(clock = new FakeClock(), inOrder = false) {
  const [mine, theirs] = duplexPair();
  const client = new PieceClient(mine, {
    fileId: FILE,
    peerId: ME,
    seederPeerId: SEEDER,
    pieceCount: 10,
    ticket: 'a.b.c',
    handshakeTimeoutMs: 1_000,
    clock,
    connection: { keepaliveIntervalMs: 0, idleTimeoutMs: 0 },
    inOrder,
  });
  const seeder = new FramedConnection(theirs, { keepaliveIntervalMs: 0, idleTimeoutMs: 0 });
  open.push(client, seeder);
  const got: Frame[] = [];
  seeder.on('frame', (f) => got.push(f));
  let closedWith: CoterieError | null | undefined;
  client.on('close', (e) => {
    closedWith = e;
  });
  client.start();
  const hello = (over: Partial<{ fileId: string; peerId: string; version: number; ticket: string }> = {}) =>
    seeder.write({
      type: 'hello',
      version: PROTOCOL_VERSION,
      fileId: FILE,
      peerId: SEEDER,
      ticket: '',
      ...over,
    });
  return { client, seeder, got, clock, hello, closed: () => closedWith, stream: mine };
}

describe('PieceClient', () => {
  it('says hello with its ticket, and turns the seeder’s frames into typed events', async () => {
    const { client, seeder, got, hello } = setup();
    await until('hello sent', () => got.length === 1);
    expect(got[0]).toMatchObject({ type: 'hello', fileId: FILE, peerId: ME, ticket: 'a.b.c' });
    const events: unknown[] = [];
    client.on('ready', () => events.push('ready'));
    client.on('bitfield', (b) => events.push(['bitfield', b.count()]));
    client.on('have', (p) => events.push(['have', p]));
    client.on('block', (piece, offset, data) => events.push(['block', piece, offset, data.toString()]));
    client.on('rejected', (r, kind, code) => events.push(['rejected', r.piece, kind, code]));
    hello();
    const bits = new Bitfield(10);
    bits.set(2);
    seeder.write({ type: 'bitfield', bitfield: bits });
    seeder.write({ type: 'have', piece: 4 });
    seeder.write({ type: 'piece', piece: 2, offset: 0, data: Buffer.from('xyz') });
    seeder.write({ type: 'reject', request: { piece: 5, offset: 0, length: 3 }, code: 'BUSY', reason: '' });
    await until('every frame seen', () => events.length === 5);
    expect(events).toEqual([
      'ready',
      ['bitfield', 1],
      ['have', 4],
      ['block', 2, 0, 'xyz'],
      ['rejected', 5, 'busy', 'BUSY'],
    ]);
    client.request({ piece: 2, offset: 0, length: 3 });
    client.cancel({ piece: 2, offset: 0, length: 3 });
    expect(client.renewTicket('d.e.f')).toBe(true);
    client.reportCorrupt(2);
    await until('frames sent', () => got.length === 5);
    expect(got.slice(1).map((f) => f.type)).toEqual(['request', 'cancel', 'ticket', 'corrupt']);
  });

  it('holds haves for the next frame, and sends them alone once their hold is up', async () => {
    const { client, got, hello, seeder, stream } = setup();
    hello();
    seeder.write({ type: 'bitfield', bitfield: new Bitfield(10) });
    await until('ready', () => client.ready);
    const writes = vi.spyOn(stream, 'write');
    // A have is news for the seeder's spreading: it waits for a request to ride with (one write,
    // one TLS record) rather than cost a write, a record and a wake-up of the seeder of its own.
    client.tellHave(3);
    client.tellHave(4);
    expect(writes).not.toHaveBeenCalled();
    client.request({ piece: 2, offset: 0, length: 3 });
    expect(writes).toHaveBeenCalledTimes(3);
    await until('the frames', () => got.length === 4);
    expect(got.slice(1)).toEqual([
      { type: 'have', piece: 3 },
      { type: 'have', piece: 4 },
      { type: 'request', piece: 2, offset: 0, length: 3 },
    ]);
    // With nothing to ride with, it leaves alone after HAVE_HOLD_MS.
    client.tellHave(5);
    await until('the have alone', () => got.length === 5);
    expect(got[4]).toEqual({ type: 'have', piece: 5 });
  });

  it('tells a seeder whose hello names nohaves neither its bitfield nor its haves', async () => {
    // A partial seeder (another downloader) makes no use of them: in a swarm of sixteen they were
    // fifteen frames per piece verified, each decoded and dropped, many in a write of their own.
    const held = new Bitfield(10);
    held.set(1);
    const quiet = setup();
    quiet.hello({ ticket: 'order.ping.nohaves' });
    quiet.seeder.write({ type: 'bitfield', bitfield: new Bitfield(10) });
    await until('ready', () => quiet.client.ready);
    quiet.client.tellPieces(held);
    for (const piece of [3, 4, 5]) quiet.client.tellHave(piece);
    quiet.client.request({ piece: 1, offset: 0, length: 3 });
    await until('the request', () => quiet.got.some((f) => f.type === 'request'));
    // Past the haves' hold: nothing else comes.
    await new Promise((r) => setTimeout(r, 3 * HAVE_HOLD_MS));
    expect(quiet.got.map((f) => f.type)).toEqual(['hello', 'request']);

    // A seeder that does not name it (a spreading one, an older one) is told as before.
    const told = setup();
    told.hello({ ticket: 'order.ping' });
    told.seeder.write({ type: 'bitfield', bitfield: new Bitfield(10) });
    await until('ready', () => told.client.ready);
    told.client.tellPieces(held);
    for (const piece of [3, 4, 5]) told.client.tellHave(piece);
    told.client.request({ piece: 1, offset: 0, length: 3 });
    await until('every frame', () => told.got.length === 6);
    expect(told.got.map((f) => f.type)).toEqual(['hello', 'bitfield', 'have', 'have', 'have', 'request']);
  });

  it('in file order: tells a seeder naming the order feature and takes its pieces from its answer; tells an older one nothing', async () => {
    const watch = (client: PieceClient) => {
      const events: unknown[] = [];
      client.on('ready', () => events.push('ready'));
      client.on('bitfield', (b) => events.push(['bitfield', b.count()]));
      client.on('have', (p) => events.push(['have', p]));
      return events;
    };
    const window = new Bitfield(10);
    const all = new Bitfield(10);
    for (let i = 0; i < 10; i++) all.set(i);

    // A seeder that takes the order frame: its spread window (an empty bitfield, haves) is not
    // the order's, its answer (every piece) is; haves after the answer count again.
    const a = setup(new FakeClock(), true);
    const aEvents = watch(a.client);
    a.hello({ ticket: 'order' });
    a.seeder.write({ type: 'bitfield', bitfield: window });
    a.seeder.write({ type: 'have', piece: 5 });
    await until('the order frame', () => a.got.length === 2);
    expect(a.got[1]).toEqual({ type: 'order' });
    a.seeder.write({ type: 'bitfield', bitfield: all });
    a.seeder.write({ type: 'have', piece: 9 });
    await until('the answer', () => aEvents.length === 3);
    expect(aEvents).toEqual(['ready', ['bitfield', 10], ['have', 9]]);

    // An older seeder (an empty hello ticket) would close on the unknown frame: it is not sent.
    const b = setup(new FakeClock(), true);
    const bEvents = watch(b.client);
    b.hello();
    window.set(3);
    b.seeder.write({ type: 'bitfield', bitfield: window });
    b.seeder.write({ type: 'have', piece: 4 });
    await until('its window', () => bEvents.length === 3);
    expect(bEvents).toEqual(['ready', ['bitfield', 1], ['have', 4]]);
    b.client.request({ piece: 3, offset: 0, length: 3 });
    await until('the request', () => b.got.length === 2);
    expect(b.got.map((f) => f.type)).toEqual(['hello', 'request']);
  });

  it('closes with PEER_MISMATCH when the hello names another peer, and PROTOCOL_ERROR on a bitfield of another length', async () => {
    const a = setup();
    a.hello({ peerId: 'c'.repeat(64) });
    await until('closed', () => a.closed() !== undefined);
    expect(a.client.ready).toBe(false);
    await until('reject received', () => a.got.some((f) => f.type === 'reject'));
    expect(a.got.find((f) => f.type === 'reject')).toMatchObject({ code: 'PEER_MISMATCH' });

    const b = setup();
    b.hello();
    b.seeder.write({ type: 'bitfield', bitfield: new Bitfield(11) });
    await until('closed', () => b.closed() !== undefined);
    await until('reject received', () => b.got.some((f) => f.type === 'reject'));
    expect(b.got.find((f) => f.type === 'reject')).toMatchObject({ code: 'PROTOCOL_ERROR' });
  });

  it('takes the seeder’s closing reject as the close’s error', async () => {
    const { seeder, closed, hello } = setup();
    hello();
    seeder.write({ type: 'reject', request: null, code: 'TICKET_REVOKED', reason: 'removed from films' });
    await until('closed', () => closed() !== undefined);
    expect(closed()).toMatchObject({ code: 'TICKET_REVOKED', message: 'removed from films' });
  });

  it('gives up on a seeder silent after hello when the injected clock passes the handshake timeout', async () => {
    const clock = new FakeClock();
    const { client, closed } = setup(clock);
    clock.advance(999);
    await new Promise((r) => setImmediate(r));
    expect(client.closed).toBe(false);
    clock.advance(1);
    await until('closed', () => closed() !== undefined);
    expect(closed()).toMatchObject({ code: 'UNAVAILABLE', message: 'seeder did not answer hello in time' });
  });

  it('is ready only with the seeder’s first bitfield, and gives up on a seeder that sends none after its hello', async () => {
    // Ready without a bitfield, a seeder looks like one holding nothing: a download with one
    // piece left, struck at another seeder, gave up on it while this one's bitfield was on its way.
    const clock = new FakeClock();
    const { client, closed, hello, seeder } = setup(clock);
    const events: unknown[] = [];
    client.on('ready', () => events.push('ready'));
    client.on('have', (p) => events.push(['have', p]));
    hello({ ticket: 'order.ping.spread' });
    seeder.write({ type: 'have', piece: 3 });
    await new Promise((r) => setTimeout(r, 20));
    expect(client.ready).toBe(false);
    expect(client.spreads).toBe(true);
    expect(events).toEqual([]);
    clock.advance(1_000);
    await until('closed', () => closed() !== undefined);
    expect(closed()).toMatchObject({
      code: 'UNAVAILABLE',
      message: 'seeder did not send its bitfield in time',
    });

    const b = setup(new FakeClock());
    b.hello({ ticket: 'order.ping.nohaves' });
    b.seeder.write({ type: 'bitfield', bitfield: new Bitfield(10) });
    await until('ready', () => b.client.ready);
    expect(b.client.spreads).toBe(false);
  });

  it('refuses a dialled stream whose transport proved another peer (PEER_MISMATCH)', async () => {
    const [mine, theirs] = duplexPair();
    open.push(mine, theirs);
    const dial: Dial = async () => ({ stream: mine, peerId: 'c'.repeat(64) });
    const target = { peerId: SEEDER, address: { host: 'memory', port: 0 } };
    await expect(
      dialPieceClient(dial, target, new AbortController().signal, {
        fileId: FILE,
        peerId: ME,
        pieceCount: 10,
        ticket: 'a.b.c',
        handshakeTimeoutMs: 1_000,
      }),
    ).rejects.toMatchObject({ code: 'PEER_MISMATCH' });
    expect(mine.destroyed).toBe(true);
  });
});

describe('FramedConnection on an injected clock', () => {
  it('sends keepalives and closes a silent peer as the fake clock says, not the wall clock', async () => {
    const clock = new FakeClock();
    const [sa, sb] = duplexPair();
    const a = new FramedConnection(sa, { keepaliveIntervalMs: 1_000, idleTimeoutMs: 4_000, clock });
    const b = new FramedConnection(sb, { keepaliveIntervalMs: 0, idleTimeoutMs: 0 });
    open.push(a, b);
    const seen: Frame[] = [];
    b.on('frame', (f) => seen.push(f));
    clock.advance(2_100);
    await until('two keepalives', () => seen.length === 2);
    expect(seen.every((f) => f.type === 'keepalive')).toBe(true);
    expect(a.closed).toBe(false);
    clock.advance(2_000);
    expect((await a.done).error?.message).toMatch(/silent for 4 s/);
  });
});
