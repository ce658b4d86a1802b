// Group members for bench/messaging.ts's fan-out, in a process of their own
// (forked with IPC): a thousand sessions' parsing and acknowledging must not
// share the event loop that sends and times the messages, nor delay its
// clock. Each arrival is stamped on the system's monotonic clock (the same in
// every process), so the parent compares it with its own send times.

import { PEER_DEFAULTS } from '../src/peer/config.js';
import { type MembersReply, type MembersRequest, sharedClockOffset } from './lib/members-ipc.js';
import { SessionClient } from './lib/session-client.js';

const offset = sharedClockOffset();
const send = (m: MembersReply) => process.send!(m);
const members: SessionClient[] = [];
const index: number[] = [];
const at: number[] = [];
let reported = 0;

const progress = setInterval(() => {
  if (index.length === reported) return;
  reported = index.length;
  send({ type: 'progress', deliveries: reported });
}, 20);

process.on('message', async (m: MembersRequest) => {
  if (m.type === 'connect') {
    for (let i = 0; i < m.members.length; i += 50) {
      await Promise.all(
        m.members.slice(i, i + 50).map(async ({ name, token }) => {
          /** The messages this member got (a second copy is not a delivery: a peer drops it). */
          const got = new Set<string>();
          members.push(
            await SessionClient.connect(m.base, name, token, {
              validate: false,
              // Acknowledged as the peer daemon does: at once, then merged over its window.
              ackWindowMs: PEER_DEFAULTS.deliveryAckWindowMs,
              onMessages: (items, arrived) => {
                for (const item of items) {
                  if (got.has(item.body)) continue;
                  got.add(item.body);
                  index.push(Number(item.body.slice(item.body.indexOf('-') + 1)));
                  at.push(arrived + offset);
                }
              },
            }),
          );
        }),
      );
    }
    send({ type: 'connected' });
  } else if (m.type === 'report') {
    send({
      type: 'report',
      index: Int32Array.from(index),
      at: Float64Array.from(at),
      ackFrames: members.reduce((n, c) => n + c.ackFrames, 0),
    });
  } else if (m.type === 'close') {
    clearInterval(progress);
    for (let i = 0; i < members.length; i += 100)
      await Promise.all(members.slice(i, i + 100).map((c) => c.close()));
    process.disconnect();
  }
});
