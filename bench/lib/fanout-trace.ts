// Inside the messaging bench's tracker process (bench/_messaging-tracker.ts): what the tracker did
// between reading a group message's `send` frame and writing its push to the last member. A
// fan-out's p99 on this shared machine moves with the other processes' load; the tracker's own
// CPU time between those two points, and what it read meanwhile, do not (a descheduled tracker
// uses none). It watches from outside the product: `ws`'s 'message' events (each frame the tracker
// reads, unmasked) and the sockets' writes (a group message's push is one shared frame buffer
// written to every member: the outbox's framesOf).
import { Socket } from 'node:net';
import { PerformanceObserver } from 'node:perf_hooks';
import WebSocket from 'ws';

/** The bench's group messages are `g<size>-<index>`. */
const BODY = /"body":"g\d+-(\d+)"/;

interface Mark {
  wall: number;
  cpu: number;
  /** Frames of each kind read so far, and acknowledged cursors among them. */
  acks: number;
}

interface Traced {
  read: Mark;
  firstPush?: Mark;
  lastPush?: Mark;
}

export interface FanoutTrace {
  /** Watches from now on (the other phases' frames are not looked at). */
  start(): void;
  /** Per group message, percentiles of what lay between its send frame and its last push; then stops. */
  report(): Record<string, number>;
}

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

export function installFanoutTrace(): FanoutTrace {
  let on = false;
  let acks = 0;
  const traced = new Map<number, Traced>();
  const gcs: { start: number; ms: number }[] = [];
  const mark = (): Mark => ({ wall: performance.now(), cpu: cpuMs(), acks });

  const emit = WebSocket.prototype.emit;
  WebSocket.prototype.emit = function (this: WebSocket, event: string | symbol, ...args: unknown[]) {
    if (on && event === 'message' && Buffer.isBuffer(args[0])) {
      const data = args[0];
      if (data.includes('"ack_messages"')) acks++;
      else if (data.includes('"type":"send"')) {
        const m = BODY.exec(data.toString('utf8'));
        if (m !== null) traced.set(Number(m[1]), { read: mark() });
      }
    }
    return emit.call(this, event, ...args);
  } as typeof emit;

  // The push loop writes one buffer to every member, synchronously: its end is the next microtask.
  let last: unknown;
  const write = Socket.prototype.write;
  Socket.prototype.write = function (this: Socket, chunk: unknown, ...rest: unknown[]) {
    if (on && chunk !== last) {
      last = chunk;
      if (Buffer.isBuffer(chunk) && chunk[0] === 0x81 && chunk.includes('"type":"messages"')) {
        const m = BODY.exec(chunk.toString('utf8', 0, Math.min(chunk.length, 4096)));
        const t = m === null ? undefined : traced.get(Number(m[1]));
        if (t !== undefined && t.firstPush === undefined) {
          t.firstPush = mark();
          queueMicrotask(() => {
            t.lastPush = mark();
            last = undefined;
          });
        }
      }
    }
    return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
  } as typeof write;

  new PerformanceObserver((list) => {
    if (on) for (const e of list.getEntries()) gcs.push({ start: e.startTime, ms: e.duration });
  }).observe({ entryTypes: ['gc'] });

  return {
    start() {
      on = true;
      traced.clear();
      gcs.length = 0;
    },
    report() {
      on = false;
      const done = [...traced.values()].filter((t) => t.lastPush !== undefined);
      traced.clear();
      const pct = (values: number[], p: number) => {
        const sorted = values.sort((a, b) => a - b);
        return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
      };
      const gcMs = (from: number, to: number) =>
        gcs.reduce((n, g) => n + Math.max(0, Math.min(to, g.start + g.ms) - Math.max(from, g.start)), 0);
      const out: Record<string, number> = { messages: done.length };
      const figures: [string, (t: Required<Traced>) => number][] = [
        // From the send frame's read to the last member's write: in the tracker's CPU time…
        ['cpuMsToLastPush', (t) => t.lastPush.cpu - t.read.cpu],
        // …in wall time (the first includes the time the tracker ran; this, the time it waited too)…
        ['wallMsToLastPush', (t) => t.lastPush.wall - t.read.wall],
        // …split: to the first push (the commit and what ran before it), then the push loop.
        ['cpuMsToFirstPush', (t) => t.firstPush.cpu - t.read.cpu],
        ['cpuMsPushLoop', (t) => t.lastPush.cpu - t.firstPush.cpu],
        // What the tracker read meanwhile: members' acknowledgement frames.
        ['acksReadBetween', (t) => t.lastPush.acks - t.read.acks],
        ['gcMsBetween', (t) => gcMs(t.read.wall, t.lastPush.wall)],
      ];
      for (const [name, f] of figures) {
        const values = done.map((t) => f(t as Required<Traced>));
        out[`${name}.p50`] = pct(values, 50);
        out[`${name}.p99`] = pct(values, 99);
        out[`${name}.max`] = Math.max(...values);
      }
      gcs.length = 0;
      return out;
    },
  };
}
