import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ShowMessagesResult } from '../../src/peer/client.js';
import { type PeerDaemon, startPeerDaemon } from '../../src/peer/daemon.js';
import { type RunningTracker, startTracker } from '../../src/tracker/index.js';
import { coterie } from '../helpers/cli-harness.js';
import { type PipedShell, pipedShell } from '../helpers/shell-harness.js';
import { suiteTempDir } from '../helpers/temp-dir.js';
import { api, userToken } from '../helpers/tracker.js';
import { until } from '../helpers/wait.js';

// Spawned CLI processes run dist/: `npm run build` first.

/** What a terminal acts on: C0 (but the newline ending a line), DEL, C1, bidi embeddings/overrides/isolates, U+2028/9. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding raw controls is the point
const RAW = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\u2028\u2029]/u;
const ATTACK = 'look\x1b[2J\x1b]0;title\x07\u202eevil\ncoterie> login alice -';

describe('nothing from the network reaches a terminal raw: real tracker, real peers, real CLI', () => {
  const root = suiteTempDir('coterie-term-').path;
  let tracker: RunningTracker;
  const peers = new Map<string, PeerDaemon>();
  let shell: PipedShell;
  const dir = (name: string) => join(root, name);
  const peer = (name: string) => peers.get(name)!;
  /** The text of each `* [bob] …` notice the shell printed above its prompt, to the end of its line. */
  const noticesFromBob = () =>
    shell.text
      .split('\n')
      .filter((l) => l.includes('* [bob] '))
      .map((l) => l.slice(l.indexOf('* [bob] ') + '* [bob] '.length));

  beforeAll(async () => {
    tracker = await startTracker({ dataDir: dir('tracker'), port: 0, scryptLogN: 10, logLevel: 'silent' });
    for (const name of ['alice', 'bob']) {
      const d = await startPeerDaemon({
        dataDir: dir(name),
        trackers: [tracker.url],
        pool: { backoffMs: [0, 20, 50, 100], jitter: 0 },
      });
      peers.set(name, d);
      await d.execute('create_user', [name, `${name}-password`]);
      await d.execute('login', [name, `${name}-password`]);
    }
    for (const name of ['alice', 'bob']) {
      await until(`${name} connected`, async () => {
        const s = (await peer(name).execute('status', [])) as { tracker: string | null };
        return s.tracker !== null;
      });
    }
    shell = pipedShell(peer('alice'), { terminal: true });
  }, 30_000);

  afterAll(async () => {
    shell?.input.end();
    await shell?.done;
    for (const p of peers.values()) await p.stop();
    await tracker?.close();
  });

  it("shows bob's escape sequences and bidi override escaped: in the shell, in show_messages, and true in --json", async () => {
    await peer('bob').execute('send_msg', ['alice', ATTACK]);
    await until('the shell printed it', () => noticesFromBob().length > 0, 15_000);
    expect(noticesFromBob()[0]).toBe('look\\x1b[2J\\x1b]0;title\\x07\\u202eevil\\ncoterie> login alice -');
    for (const raw of ['\x1b[2J', '\x1b]0;', '\x07', '\u202e']) expect(shell.text).not.toContain(raw);

    const asAlice = (...args: string[]) => coterie(['--data-dir', dir('alice'), ...args]);
    const json = await asAlice('--json', 'show_messages', 'bob');
    expect(json.code, json.err).toBe(0);
    expect(json.out).not.toMatch(RAW);
    const parsed = JSON.parse(json.out) as ShowMessagesResult;
    expect(parsed.messages.map((m) => m.body)).toEqual([ATTACK]);

    const text = await asAlice('show_messages', 'bob');
    expect(text.code, text.err).toBe(0);
    expect(text.out).not.toMatch(RAW);
    const lines = text.out.trimEnd().split('\n');
    expect(lines[0]).toMatch(/\[bob\] look\\x1b\[2J\\x1b\]0;title\\x07\\u202eevil$/);
    // The body's second line is indented under it: it cannot pass for a prompt or another message.
    expect(lines[1]).toBe('    | coterie> login alice -');
  });

  it('escapes any body in the shell and round-trips it through the inbox (property, real messages)', async () => {
    const hostile = fc
      .string({
        unit: fc.oneof(
          fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
          fc.constantFrom('\x1b', '\x07', '\n', '\r', '\x9b', '\u202e', '\u2067', '\x1b]0;t\x07', '\x1b[H'),
        ),
        minLength: 1,
        maxLength: 30,
      })
      .filter((s) => s.trim().length > 0 && !/[\ud800-\udfff]/u.test(s)); // a lone surrogate is no text to store
    const sent: string[] = [];
    await fc.assert(
      fc.asyncProperty(hostile, async (body) => {
        const before = noticesFromBob().length;
        await peer('bob').execute('send_msg', ['alice', body]);
        sent.push(body);
        await until('the notice', () => noticesFromBob().length > before, 15_000);
        for (const line of noticesFromBob().slice(before)) expect(line).not.toMatch(RAW);
      }),
      { numRuns: 25 },
    );
    const inbox = (await peer('alice').execute('show_messages', ['bob'])) as ShowMessagesResult;
    expect(inbox.messages.map((m) => m.body).slice(-sent.length)).toEqual(sent);
  }, 120_000);

  it('refuses new names made of dots, starting with a dash, or with bidi controls: at the tracker and in the CLI', async () => {
    const base = tracker.url;
    const token = await userToken(base, 'carol');
    const code = (r: { body: unknown }) => (r.body as { error?: { code: string } }).error?.code;
    for (const g of ['.', '..', '....', '-rf', '--x']) {
      expect(code(await api(base, 'POST', '/v1/groups', { groupId: g }, token)), g).toBe('INVALID_NAME');
    }
    expect(code(await api(base, 'POST', '/v1/users', { userId: '-bob', password: 'long-enough' }))).toBe(
      'INVALID_NAME',
    );
    expect(code(await api(base, 'POST', '/v1/users', { userId: '..', password: 'long-enough' }))).toBe(
      'INVALID_NAME',
    );
    expect((await api(base, 'POST', '/v1/groups', { groupId: 'club' }, token)).status).toBe(201);
    for (const topic of ['..', '-news']) {
      expect(code(await api(base, 'POST', '/v1/groups/club/topics', { topic }, token)), topic).toBe(
        'INVALID_NAME',
      );
    }
    const manifest = {
      version: 1,
      size: 1,
      pieceSize: 16384,
      pieces: ['0'.repeat(64)],
    };
    const peerId = 'a'.repeat(64);
    for (const name of ['report\u202egpj.exe', 'a\u2066b', 'x\u200fy', 'c1\u009b']) {
      const r = await api(base, 'POST', '/v1/groups/club/files', { name, manifest, peerId }, token);
      expect(code(r), JSON.stringify(name)).toBe('INVALID_NAME');
    }

    // The CLI refuses before it asks anyone, in one coded line.
    for (const args of [
      ['create_group', '..'],
      ['create_group', '-x'],
      ['create_topic', 'club', '...'],
    ]) {
      const r = await coterie(['--data-dir', dir('alice'), ...args]);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.err.trim().split('\n')).toHaveLength(1);
      expect(r.err).toContain('[INVALID_NAME]');
    }
    // A file whose name holds a bidi override is not shared (the peer says to rename it).
    mkdirSync(dir('files'), { recursive: true });
    const evil = join(dir('files'), 'report\u202egpj.exe');
    writeFileSync(evil, 'x');
    await peer('alice').execute('create_group', ['films']);
    const up = await coterie(['--data-dir', dir('alice'), 'upload_file', evil, 'films']);
    expect(up.code).toBe(1);
    expect(up.err).toContain('[PATH_INVALID]');
    expect(up.err).toContain('\\u202e');
    expect(up.err).not.toContain('\u202e');
  }, 60_000);
});
