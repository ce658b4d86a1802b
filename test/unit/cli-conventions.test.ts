import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/program.js';
import { aliasOf, COMMANDS, parseArgs } from '../../src/peer/client.js';
import { isErrorCode } from '../../src/protocol/errors.js';
import { BIN, coterie, exited, until } from '../helpers/cli-harness.js';
import { tempDir } from '../helpers/temp-dir.js';

const ROOT = join(import.meta.dirname, '..', '..');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

describe('the command table as commander subcommands', () => {
  // Other rows are added to the table in parallel: each must get its subcommand, alias and help.
  it('has one subcommand per row, with its kebab-case alias, an example that parses and its errors', async () => {
    const program = await buildProgram(['status'], { json: false });
    for (const spec of COMMANDS) {
      const cmd = program.commands.find((c) => c.name() === spec.name);
      expect(cmd, `subcommand for ${spec.name}`).toBeDefined();
      if (aliasOf(spec.name) !== spec.name) expect(cmd!.aliases()).toContain(aliasOf(spec.name));
      expect(spec.example, `example of ${spec.name}`).toMatch(new RegExp(`^${spec.name}\\b`));
      expect(() => parseArgs(spec, spec.example!.split(' ').slice(1)), spec.example).not.toThrow();
      expect(spec.errors, `errors of ${spec.name}`).toBeDefined();
      for (const code of spec.errors!) expect(isErrorCode(code), code).toBe(true);
      expect(cmd!.helpInformation()).toContain(`Example:\n  coterie ${spec.example}`);
    }
  });
});

describe('coterie through the real binary, no daemon', () => {
  const scratch = tempDir('coterie-conv-');
  afterAll(() => scratch.remove());
  const dir = scratch.path;
  const env = { COTERIE_DATA_DIR: join(dir, 'none') };

  it('prints its version from package.json with --version and -V', async () => {
    for (const flag of ['--version', '-V']) {
      const r = await coterie([flag]);
      expect(r).toMatchObject({ code: 0, out: `${VERSION}\n` });
    }
  });

  it("shows a command's syntax, example and errors with --help, under either spelling", async () => {
    for (const args of [
      ['download_file', '--help'],
      ['download-file', '--help'],
      ['help', 'download-file'],
    ]) {
      const r = await coterie(args, { env });
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.out).toContain(
        'Usage: coterie download_file <group_id> <file_name> <dest> [--version N] [--only GLOB] [--exclude GLOB] [--limit RATE] [--wait]',
      );
      expect(r.out).toContain('Example:\n  coterie download_file photos holiday.jpg ./holiday.jpg --wait');
      expect(r.out).toMatch(/Errors[^\n]*\n\s+FILE_NOT_FOUND, VERSION_NOT_FOUND, NO_SEEDERS/);
    }
    const follow = await coterie(['show_messages', '--help'], { env });
    expect(follow.out).toContain('or: coterie show_messages --follow');
  });

  it('wraps the help to 80 columns off a terminal', async () => {
    const r = await coterie(['--help'], { env });
    expect(r.code).toBe(0);
    expect(r.out).toContain('download_file <group_id> <file_name>');
    const long = r.out.split('\n').filter((l) => l.length > 80);
    expect(long).toEqual([]);
  });

  it('takes --json and --data-dir anywhere on the line, and the alias of a command', async () => {
    const other = join(dir, 'elsewhere');
    const r = await coterie(['list-groups', '--data-dir', other, '--json'], { env });
    expect(r.code).toBe(1);
    const e = JSON.parse(r.err) as { error: { code: string; message: string } };
    expect(e.error.code).toBe('DAEMON_NOT_RUNNING');
    expect(e.error.message).toContain(other);
    // Before a daemon's name it is that daemon's own --data-dir (here a file: refused, named).
    const file = join(dir, 'a-file');
    writeFileSync(file, '');
    const peer = await coterie(['--data-dir', file, 'peer', '--no-shell', '--tracker', 'http://127.0.0.1:1']);
    expect(peer.err).toContain(`cannot use ${file} as the data directory`);
    const missing = await coterie(['list_groups', '--data-dir'], { env });
    expect(missing).toMatchObject({ code: 2, err: 'coterie: --data-dir needs a directory [USAGE]\n' });
  });

  it('prints completion scripts that ask coterie __complete, which offers commands without a daemon', async () => {
    for (const shell of ['bash', 'zsh', 'fish']) {
      const r = await coterie(['completion', shell]);
      expect(r.code, shell).toBe(0);
      expect(r.out).toContain('coterie __complete');
    }
    expect(await coterie(['completion', 'tcsh'])).toMatchObject({ code: 2 });
    expect((await coterie(['__complete', 'down'], { env })).out).toBe('download_file\n');
    expect((await coterie(['__complete', 'download-f'], { env })).out).toBe('download-file\n');
    expect((await coterie(['__complete', 'show_messages', '--f'], { env })).out).toBe('--follow\n');
    // No daemon: no group names, and no error either (a key press must stay quiet).
    expect(await coterie(['__complete', 'list_files', ''], { env })).toMatchObject({
      code: 0,
      out: '',
      err: '',
    });
  });

  // util-linux `script` gives the CLI a terminal: what the user types is echoed unless raw mode is on.
  it.skipIf(spawnSync('script', ['--version']).status !== 0)(
    "reads a '-' password on a terminal without echoing it",
    async () => {
      const child = spawn('script', ['-qfec', `${process.execPath} ${BIN} login alice -`, '/dev/null'], {
        env: { ...process.env, ...env },
      });
      let seen = '';
      child.stdout.on('data', (d) => (seen += d));
      await until('the prompt', () => seen.includes('password: '));
      child.stdin.write('sekret-pass\r');
      expect(await exited(child)).toBe(1);
      expect(seen).toContain('[DAEMON_NOT_RUNNING]');
      expect(seen).not.toContain('sekret');
    },
  );

  it('says to run npm ci when dist/ is missing, not a stack trace', async () => {
    const clone = join(dir, 'clone');
    mkdirSync(join(clone, 'bin'), { recursive: true });
    cpSync(BIN, join(clone, 'bin', 'coterie.js'));
    writeFileSync(join(clone, 'package.json'), '{"type":"module"}');
    const r = spawnSync(process.execPath, [join(clone, 'bin', 'coterie.js'), 'status'], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('coterie: dist/ is missing: run npm ci (or npm run build) in the package first\n');
  });
});
