/**
 * A relay's UDP reflector (issue 19, hole punching): on the relay's port
 * number, over UDP, it answers each `reflect` datagram with the address it
 * came from. Behind a NAT that keeps one public port per local socket
 * (full-cone and port-restricted, not symmetric), that is the endpoint
 * other peers can punch to; the peer announces it as `udp://host:port`.
 * The answer is no larger than the question, so it amplifies nothing.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import { decodePunchDatagram, encodePunchDatagram } from '../protocol/punch.js';

export interface Reflector {
  close(): Promise<void>;
}

/** Binds UDP `host:port`; undefined (and a warning) when that port is taken over UDP. */
export async function startReflector(
  host: string,
  port: number,
  warn: (message: string) => void,
): Promise<Reflector | undefined> {
  const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  socket.on('message', (msg, from) => {
    const d = decodePunchDatagram(msg);
    if (d?.t !== 'reflect') return;
    socket.send(
      encodePunchDatagram({ t: 'reflected', n: d.n, host: from.address, port: from.port }),
      from.port,
      from.address,
    );
  });
  try {
    socket.bind(port, host);
    await once(socket, 'listening');
  } catch (err) {
    socket.close();
    warn(`no UDP reflector on ${host}:${port}: ${(err as Error).message}`);
    return undefined;
  }
  socket.on('error', (err) => warn(`UDP reflector: ${err.message}`));
  return {
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
