import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ShowMessagesResult } from '../../src/peer/client.js';
import { type PeerDaemon, startPeerDaemon } from '../../src/peer/daemon.js';
import type { Notice } from '../../src/peer/notices.js';
import type { MessageSent, MessageStatus } from '../../src/protocol/api.js';
import type { SendAnswer, ShowSentResult } from '../../src/protocol/control.js';
import { directStreamId } from '../../src/protocol/streams.js';
import { type RunningTracker, startTracker } from '../../src/tracker/index.js';
import { BIN, coterie } from '../helpers/cli-harness.js';
import { sample, scrapeTracker } from '../helpers/metrics.js';
import { suiteTempDir } from '../helpers/temp-dir.js';
import { api, SessionClient, userToken } from '../helpers/tracker.js';
import { until } from '../helpers/wait.js';

// Spawned CLI processes run dist/: `npm run build` first.

describe('message cursors, pending sends and unread pages: real tracker, real peers', () => {
  const root = suiteTempDir('coterie-msg-hard-').path;
  let tracker: RunningTracker;
  let port = 0;
  const peers = new Map<string, PeerDaemon>();
  const notices = new Map<string, Notice[]>();
  const clients: SessionClient[] = [];
  const dir = (name: string) => join(root, name);
  const peer = (name: string) => peers.get(name)!;

  const startTrackerHere = async () => {
    tracker = await startTracker({
      dataDir: dir('tracker'),
      port,
      scryptLogN: 10,
      logLevel: 'silent',
      heartbeatIntervalMs: 1000,
      heartbeatTimeoutMs: 5000,
      // Every test's accounts from one address (the default allows 20 per 10 minutes).
      accountCreationsPerAddress: 1_000,
    });
    port = tracker.port;
  };
  const trackerOf = (name: string) => async () =>
    ((await peer(name).execute('status', [])) as { tracker: string | null }).tracker;
  const show = async (name: string, args: string[]) =>
    (await peer(name).execute('show_messages', args)) as ShowMessagesResult;

  beforeAll(async () => {
    await startTrackerHere();
    for (const name of ['alice', 'bob']) {
      // The HTTP client's default patience (20 s of failover per call): what a send used to wait out, four times.
      const d = await startPeerDaemon({
        dataDir: dir(name),
        trackers: [tracker.url],
        pool: { backoffMs: [0, 20, 50, 100], jitter: 0 },
        heartbeatIntervalMs: 1000,
        heartbeatTimeoutMs: 5000,
      });
      peers.set(name, d);
      const list: Notice[] = [];
      notices.set(name, list);
      d.on('notice', (n) => list.push(n));
      await d.execute('create_user', [name, `${name}-password`]);
      await d.execute('login', [name, `${name}-password`]);
    }
    for (const name of ['alice', 'bob'])
      await until(`${name} connected`, async () => (await trackerOf(name)()) !== null);
  }, 30_000);

  afterAll(async () => {
    for (const c of clients) await c.close();
    for (const p of peers.values()) await p.stop();
    await tracker?.close();
  });

  it('clamps an acknowledgement beyond the stream to its last message: later messages still arrive unread', async () => {
    const base = tracker.url;
    const senderToken = await userToken(base, 'sender');
    const readerToken = await userToken(base, 'reader');
    const sender = await SessionClient.connect(base, 'sender', senderToken);
    const reader = await SessionClient.connect(base, 'reader', readerToken, { autoAck: false });
    clients.push(sender, reader);
    const streamId = directStreamId('sender', 'reader');
    const post = (body: string) =>
      api<MessageSent>(base, 'POST', '/v1/messages', { to: 'reader', clientId: body, body }, senderToken);
    await post('one');
    await post('two');
    await until('reader has both', () => reader.received.length >= 2);

    reader.raw({ type: 'ack_messages', id: 1, cursors: [{ streamId, delivered: 1e15, read: 1e15 }] });
    await until('the sender hears of it', () => sender.receipts.length > 0);
    for (const r of sender.receipts) {
      expect(r.delivered).toBeLessThanOrEqual(2);
      expect(r.read).toBeLessThanOrEqual(2);
    }
    // Negative, fractional and absurd cursors are refused, and move nothing.
    reader.raw({ type: 'ack_messages', id: 2, cursors: [{ streamId, delivered: -1 }] });
    reader.raw({ type: 'ack_messages', id: 3, cursors: [{ streamId, read: 2.5 }] });
    await until('both refused', () => reader.errors.length >= 2);
    expect(reader.errors.map((e) => e.code)).toEqual(['PROTOCOL_ERROR', 'PROTOCOL_ERROR']);

    const three = (await post('three')).body;
    expect(three.seq).toBe(3);
    const status = (
      await api<MessageStatus>(base, 'GET', `/v1/messages/${three.messageId}`, undefined, senderToken)
    ).body;
    expect(status.recipients).toEqual([{ userId: 'reader', state: 'sent' }]);
    // A new session of the reader catches up from its (clamped) cursor: message three comes.
    const again = await SessionClient.connect(base, 'reader', readerToken, { autoAck: false });
    clients.push(again);
    await until('three is caught up', () => again.received.some((m) => m.seq === 3));
    expect(again.received.map((m) => m.body)).toEqual(['three']);
  });

  it("sends over the daemon's tracker session, not by HTTP: answers and refusals as before", async () => {
    // POST /v1/messages served, whatever the status (a refusal is a 404 there).
    const posts = async () => {
      const text = await scrapeTracker(tracker.url);
      return ['200', '201', '400', '403', '404', '413', '429', '503'].reduce(
        (n, status) =>
          n + sample(text, 'coterie_http_requests_total', { method: 'POST', route: '/v1/messages', status }),
        0,
      );
    };
    const before = await posts();
    const sent: SendAnswer[] = [];
    for (const n of [1, 2, 3])
      sent.push((await peer('alice').execute('send_msg', ['bob', `over the session ${n}`])) as SendAnswer);
    for (const a of sent) expect(a).toMatchObject({ state: 'sent', to: 'bob', duplicate: false });
    expect(new Set(sent.map((a) => a.id)).size).toBe(3);
    await until('bob has the three', async () =>
      (await show('bob', ['alice'])).messages.some((m) => m.body === 'over the session 3'),
    );
    // A refusal (the tracker's error frame) reaches the user with its code, and leaves no pending send.
    await expect(peer('alice').execute('send_msg', ['nobody-such', 'to no one'])).rejects.toMatchObject({
      code: 'USER_NOT_FOUND',
    });
    // Too large for the tracker, and for a session frame: refused with a code all the same.
    await expect(peer('alice').execute('send_msg', ['bob', 'x'.repeat(1_500_000)])).rejects.toMatchObject({
      code: expect.any(String),
    });
    const pendingSends = (await peer('alice').execute('show_sent', [])) as ShowSentResult;
    expect(pendingSends.messages.filter((m) => m.mark === 'pending')).toEqual([]);
    // Only the one too large for a frame went by HTTP.
    expect(await posts(), 'POST /v1/messages made by the daemon').toBe(before + 1);
  });

  it('queues a send at once while no tracker answers (exit 0, state pending) and sends it once when one does', async () => {
    await tracker.close();
    await until('alice lost the tracker', async () => (await trackerOf('alice')()) === null);
    try {
      // The real CLI, bounded: without the queue it waits out the HTTP client's failover four times (~80 s).
      const cli = spawn(
        process.execPath,
        [BIN, '--data-dir', dir('alice'), '--json', 'send_msg', 'bob', 'queued hello'],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let out = '';
      cli.stdout.on('data', (d) => (out += d));
      const killer = setTimeout(() => cli.kill('SIGKILL'), 15_000);
      const code = await new Promise<number | null>((resolve) => cli.on('close', resolve));
      clearTimeout(killer);
      expect(code, 'send_msg answered while no tracker runs').toBe(0);
      expect(JSON.parse(out)).toMatchObject({ id: null, state: 'pending', to: 'bob' });
      const text = await coterie(['--data-dir', dir('alice'), 'send_group_msg', 'nowhere', 'queued too']);
      expect(text.code).toBe(0);
      expect(text.out).toContain('queued, will be sent when a tracker answers');
    } finally {
      // Whatever happened, the tests after this one need a tracker.
      await startTrackerHere();
    }
    await until(
      'alice sent it',
      () => notices.get('alice')!.some((n) => n.text.startsWith('sent your pending message')),
      20_000,
    );
    await until('alice is told the group one failed', () =>
      notices.get('alice')!.some((n) => n.text.startsWith('a pending message could not be sent')),
    );
    await peer('alice').execute('send_msg', ['bob', 'marker after the queue']);
    await until('bob has the marker', async () =>
      (await show('bob', ['alice'])).messages.some((m) => m.body === 'marker after the queue'),
    );
    const bodies = (await show('bob', ['alice'])).messages.map((m) => m.body);
    expect(bodies.filter((b) => b === 'queued hello')).toHaveLength(1);
  }, 60_000);

  it('pages --unread oldest first, says how many remain, and marks only what it showed as read', async () => {
    const base = tracker.url;
    const token = await userToken(base, 'alice', 'alice-password');
    const stateOf = async (id: string) =>
      (await api<MessageStatus>(base, 'GET', `/v1/messages/${id}`, undefined, token)).body.state;
    const ids: string[] = [];
    for (let i = 1; i <= 120; i++) {
      const body = { to: 'bob', clientId: `page-${i}`, body: `page ${i}` };
      ids.push((await api<MessageSent>(base, 'POST', '/v1/messages', body, token)).body.messageId);
    }
    // Delivered up to the last one: bob's peer stored all 120 (and nobody showed them yet).
    await until('bob has all 120', async () => (await stateOf(ids[119]!)) === 'delivered', 20_000);

    const first = await show('bob', ['alice', '--unread']);
    expect(first.messages.map((m) => m.body)).toEqual(Array.from({ length: 50 }, (_, i) => `page ${i + 1}`));
    expect(first.unreadLeft).toBe(70);

    const cli = await coterie(['--data-dir', dir('bob'), 'show_messages', 'alice', '--unread']);
    expect(cli.code, cli.err).toBe(0);
    const lines = cli.out.trimEnd().split('\n');
    expect(lines).toHaveLength(51);
    expect(lines[0]).toMatch(/\[alice\] page 51$/);
    expect(lines[49]).toMatch(/\[alice\] page 100$/);
    expect(lines[50]).toBe('… 20 more unread: show_messages alice --unread again');
    // Read up to what was shown, no further.
    await until('page 100 read', async () => (await stateOf(ids[99]!)) === 'read');
    expect(await stateOf(ids[100]!)).toBe('delivered');

    const last = await show('bob', ['alice', '--unread', '--limit', '30']);
    expect(last.messages.map((m) => m.body)).toEqual(Array.from({ length: 20 }, (_, i) => `page ${i + 101}`));
    expect(last.unreadLeft).toBe(0);
    expect((await show('bob', ['alice', '--unread'])).messages).toEqual([]);
  }, 120_000);
});
