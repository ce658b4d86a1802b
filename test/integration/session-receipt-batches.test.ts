import { describe, expect, it } from 'vitest';
import { api, SessionClient, trackerPerFile, userToken } from '../helpers/tracker.js';
import { until } from '../helpers/wait.js';

// Receipts over a real session to a real tracker (its own process, SQLite): a sender whose hello
// asked for `receiptBatches` gets the receipts one commit of acknowledgements made in one
// `receipts` frame, not a `receipt` frame each (a message to a group of 1,000 is acknowledged by
// hundreds of readers in one commit: issue 20's fan-out). Others get one `receipt` each, as before.

const GROUPS = ['rb1', 'rb2', 'rb3'];

describe('session: receipts of one commit', () => {
  const t = trackerPerFile();

  async function acknowledged(receiptBatches: boolean) {
    const base = t.tracker.url;
    const suffix = receiptBatches ? 'b' : 'p';
    const [st, rt] = await Promise.all([userToken(base, `rsnd-${suffix}`), userToken(base, `rrd-${suffix}`)]);
    for (const g of GROUPS) {
      const groupId = `${g}${suffix}`;
      await api(base, 'POST', '/v1/groups', { groupId }, st);
      await api(base, 'POST', `/v1/groups/${groupId}/join`, undefined, rt);
      await api(base, 'POST', `/v1/groups/${groupId}/requests/rrd-${suffix}/accept`, undefined, st);
    }
    const sender = await SessionClient.connect(base, `rsnd-${suffix}`, st, { receiptBatches });
    const reader = await SessionClient.connect(base, `rrd-${suffix}`, rt, { autoAck: false });
    const frames = new Map<string, number>();
    sender.ws.on('message', (data: Buffer) => {
      const type = (JSON.parse(data.toString()) as { type: string }).type;
      frames.set(type, (frames.get(type) ?? 0) + 1);
    });
    for (const g of GROUPS) await sender.send({ groupId: `${g}${suffix}` }, `to ${g}`);
    await until('the reader has the three messages', () => reader.received.length === GROUPS.length, 10_000);
    // One acknowledgement of three streams: one frame, queued at once, so one commit moves all three.
    reader.raw({
      type: 'ack_messages',
      cursors: reader.received.map((m) => ({ streamId: m.streamId, delivered: m.seq })),
    });
    await until('the sender has the three receipts', () => sender.receipts.length === GROUPS.length, 10_000);
    await Promise.all([sender.close(), reader.close()]);
    return { frames, receipts: sender.receipts };
  }

  it('merges the receipts of a commit into one receipts frame for a sender that asked', async () => {
    const { frames, receipts } = await acknowledged(true);
    expect(frames.get('receipts')).toBe(1);
    expect(frames.get('receipt') ?? 0).toBe(0);
    // The same receipts as one frame each would have brought.
    expect(receipts.map((r) => [r.type, r.streamId, r.reader, r.delivered, r.read]).sort()).toEqual(
      GROUPS.map((g) => ['receipt', `g:${g}b`, 'rrd-b', 1, 0]).sort(),
    );
  });

  it('sends a receipt frame per receipt to a sender that did not ask', async () => {
    const { frames, receipts } = await acknowledged(false);
    expect(frames.get('receipt')).toBe(GROUPS.length);
    expect(frames.get('receipts') ?? 0).toBe(0);
    expect(receipts).toHaveLength(GROUPS.length);
  });
});
