import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { completeCommand } from '../../src/cli/shell.js';
import { splitWords } from '../../src/cli/words.js';
import {
  absolutizePaths,
  COMMANDS,
  type CommandContext,
  getCommand,
  parseArgs,
  runCommand,
  usageOf,
} from '../../src/peer/control/commands.js';
import { checkSourceFile, resolveDestination } from '../../src/peer/paths.js';
import { CoterieError } from '../../src/protocol/errors.js';
import { tempDir } from '../helpers/temp-dir.js';
import { thrownCode } from '../helpers/wait.js';

/** A context whose every method records its name and the arguments `keep` keeps. */
function recordingContext(keep: (arg: unknown) => boolean): { calls: unknown[][]; ctx: CommandContext } {
  const calls: unknown[][] = [];
  const ctx = new Proxy({} as CommandContext, {
    get:
      (_t, prop) =>
      async (...args: unknown[]) => {
        calls.push([prop, ...args.filter(keep)]);
        return { ok: prop };
      },
  });
  return { calls, ctx };
}

describe('command table', () => {
  it("has the seed's commands with their syntax", () => {
    const names = COMMANDS.map((c) => c.name);
    for (const n of [
      'create_user',
      'login',
      'logout',
      'create_group',
      'join_group',
      'leave_group',
      'list_groups',
      'list_requests',
      'accept_request',
      'decline_request',
      'list_members',
      'list_files',
      'upload_file',
      'download_file',
      'stop_share',
      'show_downloads',
      'quit',
    ]) {
      expect(names).toContain(n);
    }
    expect(usageOf(getCommand('download_file'))).toBe(
      'download_file <group_id> <file_name> <dest> [--version N] [--only GLOB] [--exclude GLOB] [--limit RATE] [--wait] [--no-wait] [--sequential]',
    );
    expect(usageOf(getCommand('update_file'))).toBe(
      'update_file <group_id> <file_name> <path> [--if-version N]',
    );
    expect(usageOf(getCommand('lock_file'))).toBe('lock_file <group_id> <file_name> [--ttl DURATION]');
    expect(usageOf(getCommand('set_versions'))).toBe('set_versions <group_id> <keep>');
    expect(usageOf(getCommand('remove_member'))).toBe('remove_member <group_id> <user_id>');
    expect(usageOf(getCommand('stop_share'))).toBe(
      'stop_share <group_id> <file_name> | stop_share <file_name>',
    );
  });

  it('parses arguments and flags, and refuses wrong ones with USAGE or INVALID_NAME', () => {
    const dl = getCommand('download_file');
    const a = parseArgs(dl, ['films', 'movie one.mkv', '/tmp/x', '--wait']);
    expect(a.values).toEqual({ group_id: 'films', file_name: 'movie one.mkv', dest: '/tmp/x' });
    expect(a.flags.has('wait')).toBe(true);
    expect(thrownCode(() => parseArgs(dl, ['films', 'x']))).toBe('USAGE');
    expect(thrownCode(() => parseArgs(dl, ['films', 'x', '/tmp', '--fast']))).toBe('USAGE');
    expect(thrownCode(() => parseArgs(dl, ['Films!', 'x', '/tmp']))).toBe('INVALID_NAME');
    expect(thrownCode(() => parseArgs(dl, ['films', 'a/b', '/tmp']))).toBe('INVALID_NAME');
    expect(thrownCode(() => parseArgs(getCommand('create_user'), ['bob']))).toBe('USAGE');
    expect(thrownCode(() => parseArgs(getCommand('logout'), ['now']))).toBe('USAGE');
    expect(thrownCode(() => getCommand('frobnicate'))).toBe('UNKNOWN_COMMAND');
    const one = parseArgs(getCommand('stop_share'), ['x.bin']);
    expect(one.values).toEqual({ file_name: 'x.bin' });
    const two = parseArgs(getCommand('stop_share'), ['films', 'x.bin']);
    expect(two.values).toEqual({ group_id: 'films', file_name: 'x.bin' });
  });

  it('makes path arguments absolute against the caller directory, and only those', () => {
    expect(absolutizePaths(getCommand('upload_file'), ['a/b.bin', 'films'], '/home/u')).toEqual([
      '/home/u/a/b.bin',
      'films',
    ]);
    expect(absolutizePaths(getCommand('download_file'), ['films', 'x', 'out', '--wait'], '/w')).toEqual([
      'films',
      'x',
      '/w/out',
      '--wait',
    ]);
    expect(absolutizePaths(getCommand('login'), ['bob', 'pw/x'], '/w')).toEqual(['bob', 'pw/x']);
  });

  it('dispatches to the context', async () => {
    const { calls, ctx } = recordingContext((x) => typeof x === 'string');
    await runCommand(ctx, 'accept_request', ['films', 'bob']);
    await runCommand(ctx, 'stop_share', ['x.bin']);
    expect(calls).toEqual([
      ['acceptRequest', 'films', 'bob'],
      ['stopShare', 'x.bin'],
    ]);
  });

  it('reads versions, counts and lock durations, and refuses malformed ones with USAGE', async () => {
    const { calls, ctx } = recordingContext((x) => typeof x !== 'object' || x === undefined);
    await runCommand(ctx, 'lock_file', ['docs', 'a.txt', '--ttl', '30s']);
    await runCommand(ctx, 'lock_file', ['docs', 'a.txt', '--ttl=5m']);
    await runCommand(ctx, 'lock_file', ['docs', 'a.txt', '--ttl', '24h']);
    await runCommand(ctx, 'lock_file', ['docs', 'a.txt']);
    await runCommand(ctx, 'update_file', ['docs', 'a.txt', '/tmp/a', '--if-version', '3']);
    await runCommand(ctx, 'set_versions', ['docs', '7']);
    expect(calls).toEqual([
      ['lockFile', 'docs', 'a.txt', 30],
      ['lockFile', 'docs', 'a.txt', 300],
      ['lockFile', 'docs', 'a.txt', 86_400],
      ['lockFile', 'docs', 'a.txt', undefined],
      ['updateFile', 'docs', 'a.txt', '/tmp/a', 3],
      ['setVersions', 'docs', 7],
    ]);
    for (const words of [
      ['lock_file', 'docs', 'a.txt', '--ttl', '0s'],
      ['lock_file', 'docs', 'a.txt', '--ttl', '25h'],
      ['lock_file', 'docs', 'a.txt', '--ttl', '1.5h'],
      ['lock_file', 'docs', 'a.txt', '--ttl', '5 m'],
      ['update_file', 'docs', 'a.txt', '/tmp/a', '--if-version', '0'],
      ['update_file', 'docs', 'a.txt', '/tmp/a', '--if-version', 'v2'],
      ['download_file', 'docs', 'a.txt', '/tmp/b', '--version', '1e3'],
      ['set_versions', 'docs', '0'],
      ['set_versions', 'docs', '1001'],
      ['set_versions', 'docs', '-2'],
    ]) {
      const [name, ...args] = words as [string, ...string[]];
      await expect(runCommand(ctx, name, args), words.join(' ')).rejects.toMatchObject({ code: 'USAGE' });
    }
    expect(calls).toHaveLength(6);
  });
});

describe('shell helpers', () => {
  it('splits words with quotes and escapes', () => {
    expect(splitWords('  upload_file "my file.bin"  films ')).toEqual([
      'upload_file',
      'my file.bin',
      'films',
    ]);
    expect(splitWords('a \'b c\' d\\ e ""')).toEqual(['a', 'b c', 'd e', '']);
    expect(() => splitWords('a "b')).toThrow(CoterieError);
  });

  it('completes command names', () => {
    expect(completeCommand('list_r')).toEqual([['list_requests '], 'list_r']);
    expect(completeCommand('list_')[0].length).toBeGreaterThan(3);
    expect(completeCommand('login bo')[0]).toEqual([]);
  });
});

describe('path checks', () => {
  const scratch = tempDir('coterie-paths-');
  const dir = scratch.path;
  afterAll(() => scratch.remove());

  it('wants a regular file to share', () => {
    writeFileSync(join(dir, 'f.bin'), 'x');
    mkdirSync(join(dir, 'sub'));
    expect(checkSourceFile(join(dir, 'f.bin')).size).toBe(1);
    expect(thrownCode(() => checkSourceFile(join(dir, 'sub')))).toBe('PATH_INVALID');
    expect(thrownCode(() => checkSourceFile(join(dir, 'missing')))).toBe('PATH_INVALID');
  });

  it('wants an existing destination directory and no file in the way', () => {
    expect(resolveDestination(join(dir, 'new.bin'), 'x').path).toBe(join(dir, 'new.bin'));
    expect(resolveDestination(join(dir, 'sub'), 'x.bin').path).toBe(join(dir, 'sub', 'x.bin'));
    expect(thrownCode(() => resolveDestination(join(dir, 'nope', 'x.bin'), 'x'))).toBe('PATH_INVALID');
    expect(thrownCode(() => resolveDestination(join(dir, 'f.bin'), 'x'))).toBe('DESTINATION_EXISTS');
  });
});
