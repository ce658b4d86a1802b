// Dev aid: the tracker's push path alone, A/B in one run, CPU-µs per delivery (not part of
// `npm run bench`). One process holds N server-side WebSocket sessions (the tracker's side), a
// forked one their clients. Each turn pushes a group message to every session MSGS times, through
// ws (`ws.send` of the payload: a header per session, two corked writes, a writev) or as the outbox
// does (`socket.write` of one whole frame built once, src/tracker/ws/outbox.ts); then a burst of
// 999 receipts to one corked session both ways. Turns alternate, four of each.
//   node --import tsx bench/_push-path.ts [N=1000] [MSGS=250]
import { fork } from 'node:child_process';
import { createServer, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { WebSocket, WebSocketServer } from 'ws';
import { wsTextFrame } from '../src/tracker/ws/outbox.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

if (process.argv[2] === 'clients') {
  const [port, n] = process.argv.slice(3).map(Number) as [number, number];
  let open = 0;
  for (let i = 0; i < n; i++) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false });
    ws.on('open', () => {
      if (++open === n) process.send!('open');
    });
    ws.on('error', (err) => {
      process.stderr.write(`client: ${err.message}\n`);
      process.exit(1);
    });
  }
} else {
  const N = Number(process.argv[2] ?? 1000);
  const MSGS = Number(process.argv[3] ?? 250);
  const sessions: { ws: WebSocket; raw: Socket }[] = [];
  const server = createServer();
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) =>
    wss.handleUpgrade(req, socket, head, (ws) => sessions.push({ ws, raw: req.socket as Socket })),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  const child = fork(fileURLToPath(import.meta.url), ['clients', String(port), String(N)], {
    execArgv: ['--import', 'tsx'],
  });
  await new Promise((r) => child.once('message', r));
  while (sessions.length < N) await sleep(10);
  const item = {
    messageId: 'x'.repeat(26),
    streamId: 'g:fanout1000',
    seq: 1,
    sender: 'fan1000-0',
    body: 'g1000-1',
    sentAt: 1,
  };
  const text = `{"type":"messages","items":[${JSON.stringify(item)}]}`;
  const payload = Buffer.from(text);
  const cpuUs = (t: NodeJS.CpuUsage) => t.user + t.system;

  async function push(mode: 'ws' | 'frame') {
    let busy = 0;
    for (let m = 0; m < MSGS; m++) {
      const t = process.cpuUsage();
      if (mode === 'ws') for (const s of sessions) s.ws.send(payload, { binary: false });
      else {
        const frame = wsTextFrame(text);
        for (const s of sessions) s.raw.write(frame);
      }
      busy += cpuUs(process.cpuUsage(t));
      await sleep(2);
    }
    return busy / (N * MSGS);
  }

  async function receipts(mode: 'ws' | 'frame') {
    const s = sessions[0]!;
    let busy = 0;
    for (let b = 0; b < 200; b++) {
      const t = process.cpuUsage();
      s.raw.cork();
      for (let i = 0; i < 999; i++) {
        const r = JSON.stringify({
          type: 'receipt',
          streamId: 'g:f',
          reader: `m${i}`,
          delivered: b,
          read: 0,
          at: 1,
        });
        if (mode === 'ws') s.ws.send(r);
        else s.raw.write(wsTextFrame(r));
      }
      s.raw.uncork();
      busy += cpuUs(process.cpuUsage(t));
      await sleep(20);
    }
    return busy / (200 * 999);
  }

  for (let i = 0; i < 4; i++) {
    for (const mode of i % 2 === 0 ? (['ws', 'frame'] as const) : (['frame', 'ws'] as const)) {
      const line = {
        mode,
        push_cpu_us_per_delivery: Number((await push(mode)).toFixed(3)),
        receipt_cpu_us: Number((await receipts(mode)).toFixed(3)),
        load: Number(loadavg()[0]!.toFixed(1)),
      };
      process.stdout.write(`${JSON.stringify(line)}\n`);
    }
  }
  child.kill();
  server.close();
  process.exit(0);
}
