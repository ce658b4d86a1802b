import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ShowMessagesResult, ShowSentResult } from '../../src/peer/client.js';
import { type PeerDaemon, startPeerDaemon } from '../../src/peer/daemon.js';
import type { PeerEvent } from '../../src/peer/notices.js';
import type { MessagePage, MessageSent, MessageStatus } from '../../src/protocol/api.js';
import type { CoterieError } from '../../src/protocol/errors.js';
import { type RunningTracker, startTracker } from '../../src/tracker/index.js';
import { suiteTempDir } from '../helpers/temp-dir.js';
import { api, SessionClient, userToken } from '../helpers/tracker.js';
import { codeOf, until } from '../helpers/wait.js';

const FAST = { backoffMs: [0, 20, 50, 100], jitter: 0 };

describe('messages and topics: real tracker, real peers', () => {
  const root = suiteTempDir('coterie-msg-').path;
  let tracker: RunningTracker;
  let port = 0;
  const peers = new Map<string, PeerDaemon>();
  // What each peer's daemon reported (kept across its restarts): the typed events, not notice text.
  const events = new Map<string, PeerEvent[]>();
  const received = (name: string) =>
    events.get(name)!.flatMap((e) => (e.type === 'messageReceived' ? [e.message] : []));
  const receipts = (name: string) => events.get(name)!.flatMap((e) => (e.type === 'receipt' ? [e] : []));
  const clients: SessionClient[] = [];
  let base = '';

  const startTrackerHere = async () => {
    tracker = await startTracker({
      dataDir: join(root, 'tracker'),
      port,
      scryptLogN: 10,
      logLevel: 'silent',
      // Generous: the tracker shares this process with 50 clients; a busy loop must not look like death.
      heartbeatIntervalMs: 1000,
      heartbeatTimeoutMs: 5000,
      messageRatePerSecond: 1000,
      messageBurst: 1000,
      // 50 members' accounts from one address (the default allows 20 per 10 minutes).
      accountCreationsPerAddress: 1_000,
    });
    port = tracker.port;
    base = tracker.url;
  };
  const startPeer = async (name: string) => {
    const d = await startPeerDaemon({
      dataDir: join(root, name),
      trackers: [base],
      pool: FAST,
      heartbeatIntervalMs: 1000,
      heartbeatTimeoutMs: 5000,
      // The tracker restart below must fail a send quickly, not after a failover's patience.
      trackerRetryForMs: 1500,
    });
    peers.set(name, d);
    const list = events.get(name) ?? [];
    events.set(name, list);
    d.on('event', (e) => list.push(e));
    return d;
  };
  const peer = (name: string) => peers.get(name)!;
  const connected = async (name: string) =>
    until(`${name} connected`, async () => {
      const s = (await peer(name).execute('status', [])) as { tracker: string | null };
      return s.tracker !== null;
    });
  const show = async (name: string, args: string[] = []) =>
    (await peer(name).execute('show_messages', args)) as ShowMessagesResult;

  beforeAll(async () => {
    await startTrackerHere();
    for (const name of ['alice', 'bob', 'carol']) {
      const d = await startPeer(name);
      await d.execute('create_user', [name, `${name}-password`]);
      await d.execute('login', [name, `${name}-password`]);
    }
    await peer('alice').execute('create_group', ['films']);
    await peer('bob').execute('join_group', ['films']);
    await peer('alice').execute('accept_request', ['films', 'bob']);
    for (const name of ['alice', 'bob', 'carol']) await connected(name);
  }, 30_000);

  afterAll(async () => {
    for (const c of clients) await c.close();
    for (const p of peers.values()) await p.stop();
    await tracker.close();
  });

  it('pushes a direct message to an online peer, and receipts back to the sender', async () => {
    const sent = (await peer('alice').execute('send_msg', ['bob', 'hello', 'bob!'])) as {
      id: string;
      state: string;
    };
    expect(sent).toMatchObject({ state: 'sent' });
    expect(sent.id).toMatch(/^[0-9a-f]{32}$/);
    await until('bob notified', () =>
      received('bob').some((m) => m.kind === 'direct' && m.sender === 'alice' && m.body === 'hello bob!'),
    );
    await until('delivered receipt', () =>
      receipts('alice').some((r) => r.streamId === 'd:alice:bob' && r.reader === 'bob' && r.delivered >= 1),
    );
    const st1 = (await peer('alice').execute('message_status', [sent.id])) as MessageStatus;
    expect(st1).toMatchObject({ state: 'delivered', recipients: [{ userId: 'bob', state: 'delivered' }] });

    const shown = await show('bob', ['alice', '--unread']);
    expect(shown.messages.map((m) => m.body)).toEqual(['hello bob!']);
    expect((await show('bob', ['--unread'])).messages).toEqual([]);
    await until('read receipt', () =>
      receipts('alice').some((r) => r.streamId === 'd:alice:bob' && r.reader === 'bob' && r.read >= 1),
    );
    const st2 = (await peer('alice').execute('message_status', [sent.id])) as MessageStatus;
    expect(st2.state).toBe('read');
    // The sender's history: show_sent marks it from the receipts kept, and messageSent told of it.
    const history = (await peer('alice').execute('show_sent', ['bob'])) as ShowSentResult;
    expect(history.messages[0]).toMatchObject({
      messageId: sent.id,
      kind: 'direct',
      to: 'bob',
      body: 'hello bob!',
      mark: 'read',
      readBy: ['bob'],
    });
    expect(((await peer('alice').execute('show_sent', ['carol'])) as ShowSentResult).messages).toEqual([]);
    const told = events.get('alice')!.flatMap((e) => (e.type === 'messageSent' ? [e.message] : []));
    expect(told.filter((m) => m.messageId === sent.id).map((m) => m.mark)).toEqual(['sent']);
    expect(told.some((m) => m.mark === 'pending' && m.body === 'hello bob!')).toBe(true);
    // carol is neither sender nor reader
    await expect(codeOf(peer('carol').execute('message_status', [sent.id]))).resolves.toBe(
      'MESSAGE_NOT_FOUND',
    );
  });

  it('stores a retried send once and displays it once', async () => {
    const token = await userToken(base, 'alice', 'alice-password');
    const clientId = randomUUID();
    const first = await api<MessageSent>(
      base,
      'POST',
      '/v1/messages',
      { to: 'bob', clientId, body: 'only once' },
      token,
    );
    const again = await api<MessageSent>(
      base,
      'POST',
      '/v1/messages',
      { to: 'bob', clientId, body: 'only once' },
      token,
    );
    expect(first.status).toBe(201);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({
      messageId: first.body.messageId,
      seq: first.body.seq,
      duplicate: true,
    });
    await until('bob has it', async () =>
      (await show('bob', ['alice'])).messages.some((m) => m.body === 'only once'),
    );
    // a reconnect replays nothing twice either
    await peer('bob').stop();
    await startPeer('bob');
    await connected('bob');
    const all = (await show('bob', ['alice'])).messages.filter((m) => m.body === 'only once');
    expect(all).toHaveLength(1);
    expect(received('bob').filter((m) => m.body === 'only once')).toHaveLength(1);
  });

  it('delivers to a peer that was offline, in order, across its restart and a tracker restart', async () => {
    await peer('bob').stop();
    await peer('alice').execute('send_msg', ['bob', 'while', 'you', 'were', 'out']);
    await peer('alice').execute('send_group_msg', ['films', 'group news 1']);
    await tracker.close();
    // With no tracker the send is queued at once (pending); it goes out once one is back.
    await until('alice sees the tracker gone', async () => {
      const s = (await peer('alice').execute('status', [])) as { tracker: string | null };
      return s.tracker === null;
    });
    const down = (await peer('alice').execute('send_msg', ['bob', 'sent while the tracker was down'])) as {
      state: string;
    };
    expect(down.state).toBe('pending');
    await startTrackerHere();
    await connected('alice');
    await peer('alice').execute('send_msg', ['bob', 'after the tracker restart']);
    await peer('alice').execute('send_group_msg', ['films', 'group news 2']);
    await startPeer('bob');
    await until(
      'bob caught up',
      async () =>
        (await show('bob', ['--unread'])).messages.length >= 0 &&
        received('bob').some((m) => m.kind === 'group' && m.groupId === 'films' && m.body === 'group news 2'),
    );
    await until('the pending one', async () =>
      (await show('bob', ['alice'])).messages.some((m) => m.body === 'sent while the tracker was down'),
    );
    const dm = (await show('bob', ['alice'])).messages
      .map((m) => m.body)
      .filter((b) => b !== 'sent while the tracker was down');
    expect(dm.slice(-2)).toEqual(['while you were out', 'after the tracker restart']);
    const group = (await show('bob', ['--group', 'films'])).messages.map((m) => m.body);
    expect(group).toEqual(['group news 1', 'group news 2']);
    const seqs = (await show('bob', ['alice'])).messages.map((m) => m.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
  });

  it("gives a member accepted while online the group's earlier messages at once", async () => {
    await peer('alice').execute('create_group', ['club']);
    await peer('alice').execute('send_group_msg', ['club', 'club news 1']);
    await peer('alice').execute('send_group_msg', ['club', 'club news 2']);
    await connected('carol');
    await peer('carol').execute('join_group', ['club']);
    await peer('alice').execute('accept_request', ['club', 'carol']);
    // No reconnect: carol's session catches up when the tracker accepts her.
    await until(
      'carol has the club history',
      async () => (await show('carol', ['--group', 'club'])).messages.length === 2,
    );
    expect((await show('carol', ['--group', 'club'])).messages.map((m) => m.body)).toEqual([
      'club news 1',
      'club news 2',
    ]);
  });

  it('refuses non-members, oversize and malformed messages with clear errors', async () => {
    const carol = peer('carol');
    const e = (await carol
      .execute('send_group_msg', ['films', 'let me in'])
      .catch((x: unknown) => x)) as CoterieError;
    expect(e.code).toBe('NOT_A_MEMBER');
    expect(e.message).toContain("'alice'");
    await expect(codeOf(carol.execute('fetch_messages', ['films', 'news']))).resolves.toBe('NOT_A_MEMBER');
    await expect(codeOf(carol.execute('create_topic', ['films', 'x']))).resolves.toBe('NOT_A_MEMBER');
    await expect(codeOf(carol.execute('send_msg', ['nobody', 'hi']))).resolves.toBe('USER_NOT_FOUND');

    const big = 'x'.repeat(64 * 1024 + 1);
    const tooBig = (await peer('alice')
      .execute('send_msg', ['bob', big])
      .catch((x: unknown) => x)) as CoterieError;
    expect(tooBig.code).toBe('MESSAGE_TOO_LARGE');
    expect(tooBig.message).toContain('65536');
    await expect(codeOf(peer('alice').execute('send_msg', ['bob']))).resolves.toBe('USAGE');
    await expect(codeOf(peer('alice').execute('message_status', ['not-an-id']))).resolves.toBe('USAGE');

    const token = await userToken(base, 'carol', 'carol-password');
    const post = (body: unknown) =>
      api<{ error: { code: string } }>(base, 'POST', '/v1/messages', body, token);
    expect((await post({ clientId: 'a', body: 'no target' })).body.error.code).toBe('BAD_REQUEST');
    expect((await post({ to: 'bob', groupId: 'films', clientId: 'a', body: 'two' })).body.error.code).toBe(
      'BAD_REQUEST',
    );
    expect((await post({ to: 'bob', clientId: 'bad id!', body: 'x' })).body.error.code).toBe('BAD_REQUEST');
    expect((await post({ to: 'bob', clientId: 'a', body: '' })).body.error.code).toBe('BAD_REQUEST');
    expect((await post({ to: 'bob', clientId: 'a', body: 42 })).body.error.code).toBe('BAD_REQUEST');
    expect((await post({ to: 'bob', clientId: 'a', body: big })).status).toBe(413);

    const c = await SessionClient.connect(base, 'carol', token);
    clients.push(c);
    c.raw({ type: 'send', id: 7, to: 'bob', clientId: 'z', body: 5 });
    c.raw({ type: 'ack_messages', id: 8, cursors: [{ streamId: 'g:films', delivered: 3 }] });
    await expect(codeOf(c.send({ groupId: 'films' }, 'sneaky'))).resolves.toBe('NOT_A_MEMBER');
    await until('errors', () => c.errors.length >= 3);
    expect(c.errors.map((x) => x.code).sort()).toEqual(['NOT_A_MEMBER', 'NOT_A_MEMBER', 'PROTOCOL_ERROR']);
  });

  it('runs topics: create, list, subscribe, publish, offline catch-up, unsubscribe, fetch, retention', async () => {
    const alice = peer('alice');
    await alice.execute('create_topic', ['films', 'news']);
    await expect(codeOf(alice.execute('create_topic', ['films', 'news']))).resolves.toBe('TOPIC_EXISTS');
    await expect(codeOf(alice.execute('publish', ['films', 'nope', 'x']))).resolves.toBe('TOPIC_NOT_FOUND');
    await alice.execute('publish', ['films', 'news', 'before bob subscribed']);
    await peer('bob').execute('subscribe', ['films', 'news']);
    const listed = (await peer('bob').execute('list_topics', ['films'])) as {
      topics: { topic: string; subscribed: boolean }[];
    };
    expect(listed.topics).toMatchObject([{ topic: 'news', subscribed: true }]);
    await alice.execute('publish', ['films', 'news', 'live one']);
    await until('bob got the live one', () =>
      received('bob').some((m) => m.topic === 'news' && m.sender === 'alice' && m.body === 'live one'),
    );
    expect(received('bob').some((m) => m.body.includes('before bob subscribed'))).toBe(false);

    await peer('bob').stop();
    await alice.execute('publish', ['films', 'news', 'while bob was away']);
    await startPeer('bob');
    await until('bob caught up on the topic', () =>
      received('bob').some(
        (m) => m.topic === 'news' && m.sender === 'alice' && m.body === 'while bob was away',
      ),
    );
    await peer('bob').execute('unsubscribe', ['films', 'news']);
    await alice.execute('publish', ['films', 'news', 'after unsubscribe']);
    const page = (await peer('bob').execute('fetch_messages', [
      'films',
      'news',
      '--from',
      '2',
      '--limit',
      '2',
    ])) as MessagePage;
    expect(page.messages.map((m) => m.body)).toEqual(['live one', 'while bob was away']);
    expect(page).toMatchObject({ nextSeq: 4, lastSeq: 4, firstSeq: 1 });
    await new Promise((r) => setTimeout(r, 200));
    expect(received('bob').some((m) => m.body.includes('after unsubscribe'))).toBe(false);

    // retention by count and by age, set per topic through the API
    const token = await userToken(base, 'alice', 'alice-password');
    await api(base, 'POST', '/v1/groups/films/topics', { topic: 'ticker', retentionCount: 5 }, token);
    for (let i = 1; i <= 12; i++) await alice.execute('publish', ['films', 'ticker', `tick ${i}`]);
    const kept = (await alice.execute('fetch_messages', ['films', 'ticker'])) as MessagePage;
    expect(kept.messages.map((m) => m.seq)).toEqual([8, 9, 10, 11, 12]);
    expect(kept.firstSeq).toBe(8);
    // 3 s: the fetch right after the publish meets the message however loaded the machine.
    await api(base, 'POST', '/v1/groups/films/topics', { topic: 'flash', retentionMs: 3000 }, token);
    await alice.execute('publish', ['films', 'flash', 'soon gone']);
    const flash = async () =>
      ((await alice.execute('fetch_messages', ['films', 'flash'])) as MessagePage).messages;
    expect(await flash()).toHaveLength(1);
    await until('the flash message to age out', async () => (await flash()).length === 0, 15_000);
  });

  it('keeps each stream in order under concurrent senders, and limits the rate per user', async () => {
    const senders = await Promise.all(
      ['s1', 's2', 's3', 's4', 's5'].map(async (u) =>
        SessionClient.connect(base, u, await userToken(base, u)),
      ),
    );
    clients.push(...senders);
    const tokenA = await userToken(base, 'alice', 'alice-password');
    await api(base, 'POST', '/v1/groups', { groupId: 'busy' }, tokenA);
    for (const s of senders) {
      await api(base, 'POST', '/v1/groups/busy/join', undefined, s.token);
      await api(base, 'POST', `/v1/groups/busy/requests/${s.userId}/accept`, undefined, tokenA);
    }
    const reader = await SessionClient.connect(base, 'alice', tokenA);
    clients.push(reader);
    const PER = 100;
    await Promise.all(
      senders.map((s) =>
        Promise.all(Array.from({ length: PER }, (_, i) => s.send({ groupId: 'busy' }, `${s.userId}:${i}`))),
      ),
    );
    await until(
      'all arrived',
      () => reader.received.filter((m) => m.streamId === 'g:busy').length === PER * 5,
    );
    const got = reader.received.filter((m) => m.streamId === 'g:busy');
    expect(got.map((m) => m.seq)).toEqual(Array.from({ length: PER * 5 }, (_, i) => i + 1));
    for (const s of senders) {
      const mine = got.filter((m) => m.sender === s.userId).map((m) => Number(m.body.split(':')[1]));
      expect(mine).toEqual(Array.from({ length: PER }, (_, i) => i));
    }
    // each sender hears that alice's peer acknowledged its last message
    await until('receipts', () =>
      senders.every((s) => {
        const last = Math.max(...got.filter((m) => m.sender === s.userId).map((m) => m.seq));
        return s.receipts.some((r) => r.reader === 'alice' && r.delivered >= last);
      }),
    );

    const flood = await Promise.all(
      Array.from({ length: 3000 }, (_, i) => codeOf(senders[0]!.send({ to: 'alice' }, `flood ${i}`))),
    );
    expect(flood.filter((c) => c === 'RATE_LIMITED').length).toBeGreaterThan(0);
  });

  it('delivers every group message to 50 members connected over real sessions', async () => {
    const names = Array.from({ length: 50 }, (_, i) => `m${String(i).padStart(2, '0')}`);
    const tokens = await Promise.all(names.map((n) => userToken(base, n)));
    await api(base, 'POST', '/v1/groups', { groupId: 'crowd' }, tokens[0]);
    await Promise.all(
      names.slice(1).map((_n, i) => api(base, 'POST', '/v1/groups/crowd/join', undefined, tokens[i + 1])),
    );
    for (const n of names.slice(1))
      await api(base, 'POST', `/v1/groups/crowd/requests/${n}/accept`, undefined, tokens[0]);
    const members = await Promise.all(names.map((n, i) => SessionClient.connect(base, n, tokens[i]!)));
    clients.push(...members);
    const N = 20;
    for (let i = 0; i < N; i++) await members[i % 5]!.send({ groupId: 'crowd' }, `hello crowd ${i}`);
    await until(
      'everyone has everything',
      () =>
        members.every(
          (m) =>
            m.received.filter((x) => x.streamId === 'g:crowd').length ===
            N - (members.indexOf(m) < 5 ? N / 5 : 0),
        ),
      15_000,
    );
    for (const [k, m] of members.entries()) {
      const bodies = m.received.filter((x) => x.streamId === 'g:crowd').map((x) => x.body);
      const expected = Array.from({ length: N }, (_, i) => i).filter((i) => k >= 5 || i % 5 !== k);
      expect(bodies).toEqual(expected.map((i) => `hello crowd ${i}`));
    }
  }, 30_000);
});
