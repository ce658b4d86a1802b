// Run by udp.ts, one process per side, so each side's CPU is its own: TLS 1.3 between two peer
// identities over TCP or over a UDX stream (src/wire/udp-endpoint.ts), on loopback.
//   serve tcp|udp BYTES  → prints {"port","peerId"}; sends BYTES to each peer that connects, in
//                          256 KiB writes that wait for the drain, as a seeder does. Its CPU is
//                          read from /proc by udp.ts, which ends it.
//   get tcp|udp PORT PEERID BYTES → reads BYTES, prints {"ms","cpuS"} from the handshake on.
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import {
  connectToPeer,
  createIdentity,
  dialOverUdp,
  serveOverUdp,
  tlsServerOptions,
  UdpEndpoint,
} from '../../src/wire/index.js';

const [mode, transport, ...rest] = process.argv.slice(2) as [string, 'tcp' | 'udp', ...string[]];
const HOST = '127.0.0.1';
const CHUNK = 256 * 1024;
const identity = await createIdentity();
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const say = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);

async function send(stream: Duplex, bytes: number): Promise<void> {
  stream.on('error', () => {});
  const chunk = Buffer.alloc(CHUNK, 7);
  for (let sent = 0; sent < bytes; sent += CHUNK) {
    if (!stream.write(sent + CHUNK <= bytes ? chunk : chunk.subarray(0, bytes - sent)))
      await new Promise((r) => stream.once('drain', r));
  }
}

async function receive(stream: Duplex, bytes: number): Promise<void> {
  const t0 = cpu();
  const started = performance.now();
  let got = 0;
  await new Promise<void>((resolve, reject) => {
    stream.on('data', (b: Buffer) => {
      got += b.length;
      if (got >= bytes) resolve();
    });
    stream.on('error', reject);
    stream.on('close', () => reject(new Error(`closed after ${got} of ${bytes} bytes`)));
  });
  say({ ms: performance.now() - started, cpuS: cpu() - t0 });
  stream.destroy();
  process.exit(0);
}

if (mode === 'serve') {
  // Ended by udp.ts: exit properly, so that `node --cpu-prof` writes its profile.
  process.on('SIGTERM', () => process.exit(0));
  const bytes = Number(rest[0]);
  if (transport === 'tcp') {
    const server = tls.createServer(tlsServerOptions(identity), (s) => void send(s, bytes));
    server.listen(0, HOST, () =>
      say({ port: (server.address() as net.AddressInfo).port, peerId: identity.peerId }),
    );
  } else {
    const endpoint = await UdpEndpoint.open({
      host: HOST,
      onStream: serveOverUdp(identity, (s) => void send(s, bytes)),
    });
    say({ port: endpoint.address.port, peerId: identity.peerId });
  }
} else {
  const [port, peerId, bytes] = [Number(rest[0]), rest[1]!, Number(rest[2])];
  if (transport === 'tcp') {
    const { socket } = await connectToPeer({
      host: HOST,
      port,
      identity,
      expectedPeerId: peerId,
      timeoutMs: 10_000,
    });
    await receive(socket, bytes);
  } else {
    const endpoint = await UdpEndpoint.open({ host: HOST });
    const { stream } = await dialOverUdp({
      endpoint,
      candidates: () => [{ host: HOST, port }],
      identity,
      peerId,
    });
    await receive(stream, bytes);
  }
}
