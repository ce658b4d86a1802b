import { describe, expect, it } from 'vitest';
import { sample, scrapeTracker } from '../helpers/metrics.js';
import { SessionClient, trackerPerFile, userToken } from '../helpers/tracker.js';
import { until } from '../helpers/wait.js';

// Pipelined sends over a real session to a real tracker (its own process, SQLite): a client whose
// hello asked for `sentBatches` gets the answers of each commit in one `sent_batch` frame, not a
// `sent` frame per send, and each send still resolves with its own message id and seq, in order.

const SENDS = 400;

describe('session: answers to pipelined sends', () => {
  const t = trackerPerFile();

  async function pipelined(sentBatches: boolean) {
    const suffix = sentBatches ? 'b' : 'p';
    const [st, rt] = await Promise.all([
      userToken(t.tracker.url, `snd-${suffix}`),
      userToken(t.tracker.url, `rcv-${suffix}`),
    ]);
    const recipient = await SessionClient.connect(t.tracker.url, `rcv-${suffix}`, rt);
    const sender = await SessionClient.connect(t.tracker.url, `snd-${suffix}`, st, { sentBatches });
    const frames = new Map<string, number>();
    sender.ws.on('message', (data: Buffer) => {
      const type = (JSON.parse(data.toString()) as { type: string }).type;
      frames.set(type, (frames.get(type) ?? 0) + 1);
    });
    const commits = async () =>
      sample(await scrapeTracker(t.tracker.url), 'coterie_message_batch_size_count');
    const commitsBefore = await commits();
    const answers = await Promise.all(
      Array.from({ length: SENDS }, (_, i) => sender.send({ to: `rcv-${suffix}` }, `m${i}`)),
    );
    await until('the recipient has every message', () => recipient.received.length >= SENDS, 10_000);
    const committed = (await commits()) - commitsBefore;
    await Promise.all([sender.close(), recipient.close()]);
    return { answers, frames, received: recipient.received, committed };
  }

  it('merges the answers of a commit into one sent_batch for a client that asked', async () => {
    const { answers, frames, received, committed } = await pipelined(true);
    expect(answers.map((a) => a.seq)).toEqual(Array.from({ length: SENDS }, (_, i) => i + 1));
    expect(answers.every((a) => a.state === 'sent' && !a.duplicate)).toBe(true);
    expect(new Set(answers.map((a) => a.messageId)).size).toBe(SENDS);
    // Each answer is the stored message's: the recipient got the same ids at the same seqs.
    expect(received.map((m) => [m.seq, m.messageId, m.body])).toEqual(
      answers.map((a, i) => [a.seq, a.messageId, `m${i}`]),
    );
    expect(frames.get('sent') ?? 0).toBe(0);
    // One frame per commit of this session's sends at most (the tracker's count of write transactions).
    expect(frames.get('sent_batch')).toBeGreaterThan(0);
    expect(frames.get('sent_batch')).toBeLessThanOrEqual(committed);
  });

  it('answers each send with its own sent for a client that did not ask', async () => {
    const { answers, frames } = await pipelined(false);
    expect(answers.map((a) => a.seq)).toEqual(Array.from({ length: SENDS }, (_, i) => i + 1));
    expect(frames.get('sent')).toBe(SENDS);
    expect(frames.get('sent_batch') ?? 0).toBe(0);
  });
});
