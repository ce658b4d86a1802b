import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { exitedUnasked, type Spawned } from '../../src/cli/processes.js';
import { tempDir } from '../helpers/temp-dir.js';

const running: ChildProcess[] = [];
afterEach(() => {
  for (const c of running.splice(0)) c.kill('SIGKILL');
});

/** `node -e CODE` with its output in a log file, as the demo starts its processes. */
function start(dir: string, name: string, code: string): Spawned {
  const logFile = join(dir, `${name}.log`);
  const out = openSync(logFile, 'a', 0o600);
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', out, out] });
  closeSync(out);
  running.push(child);
  return { child, line: '', logFile };
}

const exited = (c: ChildProcess) =>
  new Promise<void>((resolve) =>
    c.exitCode !== null || c.signalCode !== null ? resolve() : c.once('exit', () => resolve()),
  );

describe('exitedUnasked', () => {
  it('names a process that died by itself, how, and the end of its log; not one stopped on purpose or alive', async () => {
    const dir = tempDir().path;
    const crashed = start(dir, 'crashed', "console.log('listening'); throw new Error('store lost: boom')");
    const killed = start(dir, 'killed', 'setInterval(() => {}, 1000)');
    const alive = start(dir, 'alive', 'setInterval(() => {}, 1000)');
    const signalled = start(dir, 'signalled', 'setInterval(() => {}, 1000)');
    killed.child.kill('SIGKILL');
    signalled.child.kill('SIGSEGV');
    await Promise.all([exited(crashed.child), exited(killed.child), exited(signalled.child)]);
    const said = exitedUnasked(
      [
        ['tracker t2', crashed],
        ['tracker t1', killed],
        ['alice', alive],
        ['bob', signalled],
      ],
      new Set([killed.child]),
    );
    expect(said).toHaveLength(2);
    expect(said[0]).toMatch(
      /^tracker t2 exited by itself \(code 1\); its log ends: .*\| Error: store lost: boom \| {5}at /,
    );
    expect(said[1]).toMatch(/^bob exited by itself \(SIGSEGV\)/);
  });
});
