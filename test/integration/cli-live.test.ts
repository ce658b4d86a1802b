import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ShowMessagesResult } from '../../src/peer/client.js';
import { type PeerDaemon, startPeerDaemon } from '../../src/peer/daemon.js';
import { type RunningTracker, startTracker } from '../../src/tracker/index.js';
import { BIN, coterie, exited, stop, until } from '../helpers/cli-harness.js';
import { tempDir } from '../helpers/temp-dir.js';

const ROOT = join(import.meta.dirname, '..', '..');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** The CLI's conventions against a real tracker and two real peers: the words reach the daemon as meant. */
describe('coterie commands against running daemons', () => {
  const scratch = tempDir('coterie-cli-live-');
  const root = scratch.path;
  let tracker: RunningTracker;
  const peers: Record<string, PeerDaemon> = {};
  const dirOf = (name: string) => join(root, name);

  beforeAll(async () => {
    const quick = { port: 0, scryptLogN: 10, logLevel: 'silent' } as const;
    tracker = await startTracker({ ...quick, dataDir: join(root, 'tracker') });
    for (const name of ['alice', 'bob']) {
      const d = await startPeerDaemon({ dataDir: dirOf(name), trackers: [tracker.url] });
      peers[name] = d;
      await d.execute('create_user', [name, `${name}-password`]);
      await d.execute('login', [name, `${name}-password`]);
    }
    await peers.alice!.execute('create_group', ['films']);
    await peers.alice!.execute('create_topic', ['films', 'news']);
    writeFileSync(join(root, 'trailer.mp4'), 'a short film');
    await peers.alice!.execute('upload_file', [join(root, 'trailer.mp4'), 'films']);
  }, 60_000);

  afterAll(async () => {
    for (const d of Object.values(peers)) await d.stop();
    await tracker?.close();
    scratch.remove();
  });

  const bobsBodies = async () =>
    ((await peers.bob!.execute('show_messages', ['alice'])) as ShowMessagesResult).messages.map(
      (m) => m.body,
    );

  it('reports the package version on /healthz', async () => {
    const health = (await (await fetch(`${tracker.url}/healthz`)).json()) as { version: string };
    expect(health.version).toBe(VERSION);
  });

  it("reads --json after the command, and keeps a '--json' written after a lone '--' in the message", async () => {
    const alice = ['--data-dir', dirOf('alice')];
    const json = await coterie(['send_msg', 'bob', 'hi', '--json', ...alice]);
    expect(json.code, json.err).toBe(0);
    expect(JSON.parse(json.out)).toMatchObject({ to: 'bob' });
    const literal = await coterie(['send-msg', ...alice, 'bob', '--', 'see', '--json']);
    expect(literal.code, literal.err).toBe(0);
    expect(literal.out).toMatch(/sent to 'bob'/);
    await until('both messages at bob', async () => (await bobsBodies()).length === 2);
    expect(await bobsBodies()).toEqual(expect.arrayContaining(['hi', 'see --json']));
    const groups = await coterie(['list_groups', '--json', ...alice]);
    expect(JSON.parse(groups.out)).toMatchObject({ groups: [{ groupId: 'films' }] });
  });

  it('completes group, file and topic names from the running daemon, through the bash script', async () => {
    const env = { COTERIE_DATA_DIR: dirOf('alice') };
    expect((await coterie(['__complete', 'list_files', 'f'], { env })).out).toBe('films\n');
    expect((await coterie(['__complete', 'download_file', 'films', ''], { env })).out).toBe('trailer.mp4\n');
    expect((await coterie(['__complete', 'publish', 'films', ''], { env })).out).toBe('news\n');
    // The script itself, as bash runs it on a Tab: `coterie` on PATH, the words in COMP_WORDS.
    const path = join(root, 'path');
    mkdirSync(path);
    symlinkSync(BIN, join(path, 'coterie'));
    const script = (await coterie(['completion', 'bash'])).out;
    // Not spawnSync: the daemons live in this process and must answer while bash runs.
    const bash = spawn(
      'bash',
      [
        '-c',
        `${script}\nCOMP_WORDS=(coterie list_members "")\nCOMP_CWORD=2\n_coterie_complete\nprintf '%s\\n' "\${COMPREPLY[@]}"`,
      ],
      {
        env: { ...process.env, ...env, PATH: `${path}:${process.env.PATH}` },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let completed = '';
    bash.stdout.on('data', (d) => (completed += d));
    expect(await exited(bash, 15_000)).toBe(0);
    expect(completed).toBe('films\n');
  });

  it('show_messages --follow prints a message sent after it started, and ends on Ctrl-C', async () => {
    const child = spawn(process.execPath, [BIN, 'show_messages', '--follow', '--data-dir', dirOf('bob')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    try {
      await until('the messages so far', () => out.includes('\n'));
      const before = out.length;
      await peers.alice!.execute('send_msg', ['bob', 'the late one']);
      await until('the new message', () => out.slice(before).includes('[alice] the late one'), 10_000);
    } finally {
      expect(await stop(child, 'SIGINT')).toBe(0);
    }
  });

  it('show_downloads --watch --json answers again every second, one line each, until Ctrl-C', async () => {
    const child = spawn(
      process.execPath,
      [BIN, 'show-downloads', '--watch', '--json', '--data-dir', dirOf('bob')],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    try {
      await until('two answers', () => out.split('\n').length > 2, 10_000);
      for (const line of out.trim().split('\n')) expect(JSON.parse(line)).toMatchObject({ downloads: [] });
    } finally {
      expect(await stop(child, 'SIGINT')).toBe(0);
    }
  });
});
