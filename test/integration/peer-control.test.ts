import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callDaemon, callDaemonAt } from '../../src/peer/control/client.js';
import { startControlServer } from '../../src/peer/control/server.js';
import { type PeerDaemon, startPeerDaemon } from '../../src/peer/daemon.js';
import { daemonFilePath, readDaemonFile } from '../../src/peer/daemon-file.js';
import { CoterieError } from '../../src/protocol/errors.js';
import { BIN } from '../helpers/cli-harness.js';
import { pipedShell } from '../helpers/shell-harness.js';
import { suiteTempDir, tempDir } from '../helpers/temp-dir.js';
import { until } from '../helpers/wait.js';

function run(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: 'pipe' });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.stdin.end();
    p.on('close', (code) => resolve({ code: code ?? -1, out, err }));
  });
}

describe('control API', () => {
  it('guards with the token, runs commands, streams progress, returns coded errors', async () => {
    const server = await startControlServer({
      token: 'secret',
      execute: async (name, args, io) => {
        if (name === 'boom') throw new CoterieError('GROUP_NOT_FOUND', 'no group');
        if (name === 'crash') throw new Error('bug');
        io.onProgress?.({ kind: 'hash', label: 'x', doneBytes: 1, totalBytes: 2 });
        return { name, args };
      },
    });
    try {
      const info = { control: { host: server.host, port: server.port }, token: 'secret' };
      expect(server.host).toBe('127.0.0.1');
      await expect(callDaemonAt(info, 'echo', ['a'])).resolves.toEqual({ name: 'echo', args: ['a'] });
      const seen: number[] = [];
      await expect(
        callDaemonAt(info, 'echo', [], { onProgress: (p) => seen.push(p.doneBytes) }),
      ).resolves.toEqual({
        name: 'echo',
        args: [],
      });
      expect(seen).toEqual([1]);
      await expect(callDaemonAt(info, 'boom', [])).rejects.toMatchObject({ code: 'GROUP_NOT_FOUND' });
      await expect(callDaemonAt(info, 'boom', [], { onProgress: () => {} })).rejects.toMatchObject({
        code: 'GROUP_NOT_FOUND',
      });
      await expect(callDaemonAt(info, 'crash', [])).rejects.toMatchObject({ code: 'INTERNAL' });
      await expect(callDaemonAt({ ...info, token: 'wrong!' }, 'echo', [])).rejects.toMatchObject({
        code: 'UNAUTHENTICATED',
      });
      const res = await fetch(`http://127.0.0.1:${server.port}/v1/command`, {
        method: 'POST',
        headers: { authorization: 'Bearer secret' },
        body: '{not json',
      });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
      const big = await fetch(`http://127.0.0.1:${server.port}/v1/command`, {
        method: 'POST',
        headers: { authorization: 'Bearer secret' },
        body: 'x'.repeat(200_000),
      }).catch(() => undefined);
      if (big !== undefined) expect(big.status).toBe(413);
    } finally {
      await server.stop();
    }
  });
});

describe('peer daemon without a tracker', () => {
  const dir = suiteTempDir('coterie-peer-').path;
  let daemon: PeerDaemon;
  beforeAll(async () => {
    // port 1 on loopback: nobody listens, so every tracker call fails fast
    daemon = await startPeerDaemon({ dataDir: dir, trackers: ['http://127.0.0.1:1'] });
  });
  afterAll(async () => {
    await daemon?.stop();
  });

  it('writes daemon.json 0600 and answers the CLI', async () => {
    expect(statSync(daemonFilePath(dir)).mode & 0o777).toBe(0o600);
    expect(readDaemonFile(dir)?.peerId).toBe(daemon.peerId);
    expect(await callDaemon(dir, 'status', [])).toMatchObject({ peerId: daemon.peerId, userId: null });
    const r = await run(['--data-dir', dir, 'status']);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`peer ${daemon.peerId}`);
    const j = await run(['--data-dir', dir, '--json', 'show_downloads']);
    expect(JSON.parse(j.out)).toEqual({ downloads: [] });
  });

  it('refuses a second daemon on the same data directory', async () => {
    await expect(startPeerDaemon({ dataDir: dir, trackers: ['http://127.0.0.1:1'] })).rejects.toMatchObject({
      code: 'USAGE',
      message: expect.stringContaining('already runs'),
    });
    expect(await callDaemon(dir, 'status', [])).toMatchObject({ peerId: daemon.peerId });
  });

  it('gives one-line coded errors and non-zero exits', async () => {
    const notLogged = await run(['--data-dir', dir, 'list_groups']);
    expect(notLogged.code).toBe(1);
    expect(notLogged.err.trim().split('\n')).toHaveLength(1);
    expect(notLogged.err).toContain('[NOT_LOGGED_IN]');
    const usage = await run(['--data-dir', dir, 'join_group']);
    expect(usage.code).toBe(2);
    expect(usage.err).toContain('usage: join_group <group_id>');
    // A directory is a folder share; a device is neither (checked before the login).
    const deviceAsFile = await run(['--data-dir', dir, '--json', 'upload_file', '/dev/null', 'films']);
    expect(JSON.parse(deviceAsFile.err)).toMatchObject({ error: { code: 'PATH_INVALID' } });
    const noDest = await run(['--data-dir', dir, 'download_file', 'films', 'x', join(dir, 'no', 'x')]);
    expect(noDest.err).toContain('[PATH_INVALID]');
    const down = await run(['--data-dir', dir, 'login', 'bob', 'password1']);
    expect(down.err).toContain('[TRACKER_UNAVAILABLE]');
    const unknown = await run(['--data-dir', dir, 'frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain('[UNKNOWN_COMMAND]');
  });

  it('answers a malformed command line with a coded usage error and exit 2, and help on a command', async () => {
    for (const [args, says] of [
      [['--data-dir'], '--data-dir needs a directory [USAGE]'],
      [['--json'], "give a command after --data-dir/--json: 'coterie help' lists them [USAGE]"],
      [['--bogus-flag', 'list_groups'], "unknown option '--bogus-flag' [USAGE]"],
      [['tracker', '--port'], "option '--port <port>' argument missing [USAGE]"],
      [['peer', '--frobnicate'], "unknown option '--frobnicate' [USAGE]"],
    ] as const) {
      const r = await run([...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err.split('\n')[0]).toBe(`coterie: ${says}`);
    }
    const help = await run(['help', 'download_file']);
    expect(help.code).toBe(0);
    expect(help.out).toContain(
      'download_file <group_id> <file_name> <dest> [--version N] [--only GLOB] [--exclude GLOB] [--limit RATE] [--wait]',
    );
    expect(help.out).not.toContain('create_user');
    expect((await run(['tracker', '--help'])).code).toBe(0);
  });

  it('refuses a data directory that is a file with PATH_INVALID', async () => {
    const file = join(dir, 'not-a-dir');
    writeFileSync(file, 'x');
    const r = await run(['peer', '--no-shell', '--data-dir', file, '--tracker', 'http://127.0.0.1:1']);
    expect(r.code).toBe(1);
    expect(r.err).toBe(
      `coterie: cannot use ${file} as the data directory: it (or a parent) is a file [PATH_INVALID]\n`,
    );
  });

  it('refuses bad daemon flags with USAGE before starting anything', async () => {
    const fresh = tempDir('coterie-flags-').path;
    for (const [flags, says] of [
      [['peer', '--no-shell', '--advertise', 'bad host!'], "invalid --advertise 'bad host!'"],
      [['peer', '--no-shell', '--advertise', '-x.example'], "invalid --advertise '-x.example'"],
      [
        ['peer', '--no-shell', '--log-level', 'loud'],
        "--log-level must be one of fatal, error, warn, info, debug, trace, silent, not 'loud'",
      ],
      [['peer', '--no-shell', '--port', '70000'], "invalid --port '70000'"],
      [['tracker', '--log-level', 'loud'], '--log-level must be one of'],
    ] as const) {
      const r = await run([...flags, '--data-dir', join(fresh, 'd')]);
      expect(r.code, flags.join(' ')).toBe(2);
      expect(r.err).toContain(says);
      expect(r.err).toContain('[USAGE]');
    }
    // Nothing was started, so nothing was made.
    expect(existsSync(join(fresh, 'd', 'daemon.json'))).toBe(false);
  });

  it('runs the shell: help, commands in order, errors on one line, notices above the prompt', async () => {
    const shell = pipedShell(daemon);
    shell.input.write('help\nstatus\nbogus\njoin_group\n');
    daemon.emit('notice', { kind: 'group', text: "'bob' asks to join 'films'", at: Date.now() });
    await until('the usage line', () => shell.text.includes('usage: join_group'));
    shell.input.end();
    await shell.done;
    const text = shell.text;
    // Wrapped to 80 columns off a terminal: the usage goes on under its first line.
    expect(text).toMatch(
      /download_file <group_id> <file_name>\s+downloads a file of a group to dest \(its\n\s+<dest> \[--version N\] \[--only GLOB\]\s+current version[^\n]*\n\s+\[--exclude GLOB\] \[--limit RATE\]\s+folder[^\n]*\n\s+\[--wait\]/,
    );
    expect(text).toContain(`peer ${daemon.peerId}`);
    expect(text).toContain("error: unknown command 'bogus'");
    expect(text).toContain("* 'bob' asks to join 'films'");
    expect(text.indexOf('peer ')).toBeLessThan(text.indexOf("unknown command 'bogus'"));
  });

  it('keeps a password off the terminal and out of the history', async () => {
    const historyDir = tempDir('coterie-hist-').path;
    const historyFile = join(historyDir, 'history');
    const shell = pipedShell(daemon, { terminal: true, historyFile });
    // Typed on the line (echoed, as typed) and asked for with '-' (never echoed).
    shell.input.write('login carol on-the-line-pw\r');
    await until('the first login refused', () => /error: .*\n/.test(shell.text));
    shell.input.write('login carol -\r');
    await until('the password prompt', () => shell.text.includes('password: '));
    shell.input.write('asked-for-pw\r');
    await until('the second login refused', () => (shell.text.match(/error: /g) ?? []).length >= 2);
    shell.input.end();
    await shell.done;
    expect(shell.text).not.toContain('asked-for-pw');
    const history = readFileSync(historyFile, 'utf8');
    expect(history).toBe('login carol -\nlogin carol -\n');
    expect(history).not.toContain('pw');
  });

  it('says how to start a daemon when none runs', async () => {
    const empty = tempDir('coterie-none-').path;
    const r = await run(['status'], { COTERIE_DATA_DIR: empty });
    expect(r.code).toBe(1);
    expect(r.err).toContain('[DAEMON_NOT_RUNNING]');
    expect(r.err).toContain('coterie peer');
  });
});

describe('coterie peer process', () => {
  it('says why it crashed in peer.log and on stderr, and exits non-zero', async () => {
    const dir = tempDir('coterie-crash-').path;
    // A bug, simulated: a rejection nobody handles, on SIGUSR2 once the daemon serves. (Preloaded:
    // the daemon itself has no way to be told to crash.)
    const bug = join(dir, 'bug.mjs');
    writeFileSync(bug, "process.on('SIGUSR2', () => Promise.reject(new Error('simulated bug')));\n");
    const p = spawn(
      process.execPath,
      ['--import', bug, BIN, 'peer', '--data-dir', dir, '--tracker', 'http://127.0.0.1:1', '--no-shell'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    const exited = new Promise<number | null>((r) => p.on('exit', (c) => r(c)));
    try {
      await new Promise<void>((resolve, reject) => {
        let out = '';
        p.stdout.on('data', (d) => {
          out += d;
          if (out.includes('serving on')) resolve();
        });
        void exited.then((c) => reject(new Error(`exited ${c} before serving: ${err}`)));
      });
      p.kill('SIGUSR2');
    } finally {
      // Whatever happened, no daemon outlives the test.
      setTimeout(() => p.kill('SIGKILL'), 5_000).unref();
    }
    const code = await exited;
    expect(code).toBe(1);
    expect(err).toContain('coterie peer crashed: Error: simulated bug');
    const fatal = readFileSync(join(dir, 'peer.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { level: number; msg: string; err?: { message: string } })
      .find((l) => l.level === 60);
    expect(fatal).toMatchObject({ msg: 'peer daemon crashed', err: { message: 'simulated bug' } });
  });

  it('prints its ready line, serves the CLI, and stops cleanly on quit and on SIGTERM', async () => {
    const dir = tempDir('coterie-proc-').path;
    for (const how of ['quit', 'SIGTERM'] as const) {
      const p = spawn(
        process.execPath,
        [BIN, 'peer', '--data-dir', dir, '--tracker', 'http://127.0.0.1:1', '--no-shell'],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      const line = await new Promise<string>((resolve, reject) => {
        let out = '';
        p.stdout.on('data', (d) => {
          out += d;
          if (out.includes('\n')) resolve(out);
        });
        p.on('exit', (c) => reject(new Error(`exited ${c}`)));
      });
      expect(line).toMatch(/^peer [0-9a-f]{64} serving on 127\.0\.0\.1:\d+/);
      const exited = new Promise<number | null>((r) => p.on('exit', (c) => r(c)));
      if (how === 'quit') expect((await run(['--data-dir', dir, 'quit'])).code).toBe(0);
      else p.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(readDaemonFile(dir)).toBeUndefined();
    }
  });
});
