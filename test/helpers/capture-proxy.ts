import { connect, createServer, type Socket } from 'node:net';

/** A TCP proxy that keeps every byte it forwards, as someone on the path would see them. */
export interface CaptureProxy {
  readonly port: number;
  /** Everything clients sent toward the target, and the target sent back, concatenated. */
  captured(): Buffer;
  /**
   * The connections open now go silent both ways, as behind a NAT that dropped their mapping
   * or in front of a frozen relay: their bytes are dropped, nothing is closed or reset. New
   * connections are forwarded as before.
   */
  swallow(): void;
  /** Connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1 (port 0) and forwards each connection to `target`, recording both directions. */
export async function captureProxy(target: { host: string; port: number }): Promise<CaptureProxy> {
  const chunks: Buffer[] = [];
  const sockets = new Set<Socket>();
  const swallowed = new Set<Socket>();
  let accepted = 0;
  const forward = (from: Socket, to: Socket) => {
    from.on('data', (d: Buffer) => {
      if (swallowed.has(from)) return;
      chunks.push(Buffer.from(d));
      if (!to.write(d)) from.pause();
    });
    to.on('drain', () => from.resume());
    from.on('end', () => to.end());
  };
  const server = createServer((inbound) => {
    accepted++;
    const outbound = connect(target);
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        sockets.delete(s);
        swallowed.delete(s);
        inbound.destroy();
        outbound.destroy();
      });
    }
    forward(inbound, outbound);
    forward(outbound, inbound);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    captured: () => Buffer.concat(chunks),
    swallow: () => {
      for (const s of sockets) swallowed.add(s);
    },
    connections: () => accepted,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
