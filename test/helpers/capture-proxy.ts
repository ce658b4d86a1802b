import { connect, createServer, type Socket } from 'node:net';

/** A TCP proxy that keeps every byte it forwards, as someone on the path would see them. */
export interface CaptureProxy {
  readonly port: number;
  /** Everything clients sent toward the target, and the target sent back, concatenated. */
  captured(): Buffer;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1 (port 0) and forwards each connection to `target`, recording both directions. */
export async function captureProxy(target: { host: string; port: number }): Promise<CaptureProxy> {
  const chunks: Buffer[] = [];
  const sockets = new Set<Socket>();
  const forward = (from: Socket, to: Socket) => {
    from.on('data', (d: Buffer) => {
      chunks.push(Buffer.from(d));
      if (!to.write(d)) from.pause();
    });
    to.on('drain', () => from.resume());
    from.on('end', () => to.end());
  };
  const server = createServer((inbound) => {
    const outbound = connect(target);
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        sockets.delete(s);
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
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
