import { createSocket, type Socket } from 'node:dgram';
import fc from 'fast-check';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeMapResponse, encodeMapRequest, MAP_BYTES, PCP_SERVER_PORT } from '../../src/peer/pcp.js';
import { createPortMapper, type PortMapper } from '../../src/peer/port-mapping.js';
import { until } from '../helpers/wait.js';

// PCP (RFC 6887) is ours; the real router is tested in test/integration/netns-portmap.test.ts
// (miniupnpd). Here: the bytes, a hostile answer, and the routers miniupnpd cannot play — one that
// speaks only NAT-PMP (RFC 6886), one that refuses, one that is silent on port 5351. They listen on
// 127.51.51.x:5351 (the library's NAT-PMP always asks port 5351; these loopback addresses are ours).

const NONCE = Buffer.from('0123456789ab');

describe('PCP MAP messages', () => {
  it('encodes a MAP request as RFC 6887 lays it out', () => {
    const b = encodeMapRequest({
      protocol: 'tcp',
      client: '10.1.0.2',
      internalPort: 4321,
      externalPort: 4321,
      lifetimeSec: 7200,
      nonce: NONCE,
    });
    expect(b.length).toBe(60);
    expect(b.toString('hex')).toBe(
      [
        '02010000', // version 2, R=0 opcode MAP, reserved
        '00001c20', // lifetime 7200
        '00000000000000000000ffff0a010002', // client ::ffff:10.1.0.2
        NONCE.toString('hex'),
        '06000000', // TCP, reserved
        '10e110e1', // internal 4321, suggested external 4321
        '00000000000000000000ffff00000000', // suggested external address: any
      ].join(''),
    );
    expect(() => encodeMapRequest({ ...base(), client: '::1' })).toThrow(/not IPv4/);
    expect(() => encodeMapRequest({ ...base(), nonce: Buffer.alloc(4) })).toThrow(/12 bytes/);
  });

  it('decodes an answer, and ignores what is not one (never throws on any bytes)', () => {
    const answer = mapAnswer(encodeMapRequest(base()), {
      result: 0,
      lifetime: 120,
      external: [198, 18, 1, 2, 40000],
    });
    expect(decodeMapResponse(answer)).toMatchObject({
      version: 2,
      result: 0,
      lifetimeSec: 120,
      internalPort: 4321,
      externalPort: 40000,
      externalAddress: '198.18.1.2',
    });
    expect(decodeMapResponse(answer.subarray(0, 59))).toBeUndefined();
    expect(decodeMapResponse(Buffer.from([0, 0x81, 0, 1]))).toMatchObject({ version: 0, result: 1 });
    // A request is not an answer.
    expect(decodeMapResponse(encodeMapRequest(base()))).toBeUndefined();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1200 }), (bytes) => {
        const r = decodeMapResponse(Buffer.from(bytes));
        if (r !== undefined) expect([0, 2]).toContain(r.version);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('port mapping: PCP first, then NAT-PMP', { timeout: 20_000 }, () => {
  const routers: Socket[] = [];
  let mapper: PortMapper | undefined;
  afterEach(async () => {
    await mapper?.stop();
    mapper = undefined;
    for (const r of routers.splice(0)) r.close();
  });

  /** A router on host:5351 that hands each datagram to `answer` and records what it got. */
  async function router(host: string, answer: (msg: Buffer) => Buffer | undefined) {
    const got: Buffer[] = [];
    const s = createSocket('udp4');
    routers.push(s);
    s.on('message', (msg, from) => {
      got.push(msg);
      const reply = answer(msg);
      if (reply) s.send(reply, from.port, from.address);
    });
    await new Promise<void>((resolve) => s.bind(PCP_SERVER_PORT, host, resolve));
    return got;
  }

  function startMapper(gateway: string, leaseSec = 4) {
    let changes = 0;
    mapper = createPortMapper({
      port: 4321,
      gateway,
      leaseSec,
      log: pino({ level: 'silent' }),
      onChange: () => changes++,
    });
    return { mapper, changes: () => changes };
  }

  it('maps by PCP where the router speaks it, with the lifetime the router granted, and deletes it at stop', async () => {
    const got = await router('127.51.51.1', (msg) =>
      mapAnswer(msg, { result: 0, lifetime: 120, external: [198, 18, 9, 9, 50000] }),
    );
    const { mapper: m, changes } = startMapper('127.51.51.1');
    await m.start();
    expect(m.view()).toMatchObject({ protocol: 'pcp', external: '198.18.9.9:50000', leaseSec: 120 });
    expect(changes()).toBe(1);
    expect(got.map((g) => g.readUInt32BE(4))).toEqual([4]); // asked 4 s, granted 120
    await m.stop();
    // The delete: lifetime 0, the mapping's own nonce.
    expect(got.length).toBe(2);
    expect(got[1]!.readUInt32BE(4)).toBe(0);
    expect(got[1]!.subarray(24, 36)).toEqual(got[0]!.subarray(24, 36));
  });

  it('falls back to NAT-PMP on a router that answers PCP with "unsupported version" (RFC 6886 §3.5)', async () => {
    const got = await router('127.51.51.2', natPmpOnly([198, 18, 7, 7]));
    const { mapper: m } = startMapper('127.51.51.2');
    await m.start();
    expect(m.view()).toMatchObject({ protocol: 'natpmp', external: '198.18.7.7:4321' });
    expect(got[0]![0]).toBe(2); // PCP was asked first
    expect(got.slice(1).every((g) => g[0] === 0)).toBe(true);
  });

  it('tries NAT-PMP after a PCP refusal, and reports both when neither maps', async () => {
    const got = await router('127.51.51.3', (msg) =>
      msg[0] === 2
        ? mapAnswer(msg, { result: 2 /* NOT_AUTHORIZED */, lifetime: 0, external: [0, 0, 0, 0, 0] })
        : undefined,
    );
    const { mapper: m } = startMapper('127.51.51.3');
    await m.start();
    expect(m.view()).toBeUndefined();
    await until('a NAT-PMP request after the PCP refusal', () => got.some((g) => g[0] === 0));
  });

  it('does not ask NAT-PMP on a router silent to PCP: it shares the port and would have answered', async () => {
    const got = await router('127.51.51.4', () => undefined);
    const { mapper: m } = startMapper('127.51.51.4');
    await m.start();
    expect(m.view()).toBeUndefined();
    expect(got.length).toBeGreaterThan(0);
    // Resent while unanswered (a lost datagram), but only ever as PCP.
    expect(got.every((g) => g[0] === 2 && g.length === MAP_BYTES)).toBe(true);
  });

  it('refuses an answer for another mapping or without an IPv4 address, and one with another nonce is ignored', async () => {
    await router('127.51.51.5', (msg) => {
      if (msg[0] !== 2) return undefined; // NAT-PMP, asked after the refusal: silent
      const a = mapAnswer(msg, { result: 0, lifetime: 60, external: [198, 18, 1, 1, 4321] });
      a.writeUInt16BE(9999, 40); // another internal port
      return a;
    });
    const { mapper: m } = startMapper('127.51.51.5');
    await m.start();
    expect(m.view()).toBeUndefined();

    const got = await router('127.51.51.6', (msg) => {
      if (msg[0] !== 2) return undefined;
      const a = mapAnswer(msg, { result: 0, lifetime: 60, external: [198, 18, 1, 1, 4321] });
      a.writeUInt8(a.readUInt8(24) ^ 1, 24); // not our nonce: dropped, as a stranger's datagram would be
      return a;
    });
    const second = startMapper('127.51.51.6').mapper;
    await second.start();
    expect(second.view()).toBeUndefined();
    expect(got.length).toBeGreaterThan(1); // resent, as for no answer
  });
});

function base() {
  return {
    protocol: 'tcp' as const,
    client: '10.1.0.2',
    internalPort: 4321,
    externalPort: 4321,
    lifetimeSec: 60,
    nonce: NONCE,
  };
}

/** A PCP server's answer to `request`: its nonce, protocol and internal port, the given result. */
function mapAnswer(
  request: Buffer,
  o: { result: number; lifetime: number; external: [number, number, number, number, number] },
): Buffer {
  const a = Buffer.alloc(60);
  a[0] = 2;
  a[1] = 0x81;
  a[3] = o.result;
  a.writeUInt32BE(o.lifetime, 4);
  a.writeUInt32BE(1000, 8); // epoch
  request.copy(a, 24, 24, 36); // nonce
  a[36] = request[36]!;
  a.writeUInt16BE(request.readUInt16BE(40), 40);
  a.writeUInt16BE(o.external[4], 42);
  a.writeUInt16BE(0xffff, 54);
  Buffer.from(o.external.slice(0, 4)).copy(a, 56);
  return a;
}

/** An RFC 6886 router: "unsupported version" to PCP, the external address and TCP/UDP mappings to NAT-PMP. */
function natPmpOnly(external: [number, number, number, number]) {
  return (msg: Buffer): Buffer | undefined => {
    const header = (op: number, result: number, bytes: number) => {
      const a = Buffer.alloc(bytes);
      a[1] = 128 + op;
      a.writeUInt16BE(result, 2);
      a.writeUInt32BE(1000, 4);
      return a;
    };
    if (msg[0] !== 0) return header(msg[1]!, 1, 8);
    if (msg[1] === 0) {
      const a = header(0, 0, 12);
      Buffer.from(external).copy(a, 8);
      return a;
    }
    if ((msg[1] === 1 || msg[1] === 2) && msg.length >= 12) {
      const a = header(msg[1], 0, 16);
      a.writeUInt16BE(msg.readUInt16BE(4), 8);
      a.writeUInt16BE(msg.readUInt16BE(6) || msg.readUInt16BE(4), 10);
      a.writeUInt32BE(msg.readUInt32BE(8), 12);
      return a;
    }
    return undefined;
  };
}
