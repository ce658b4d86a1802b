// A node killed before leaves a stale postmaster.pid (and a dead supervisor's pid): by the time
// the formation or replica set is stopped, that pid may be any other process's, for pids wrap
// within minutes on a busy machine (at 32,768 on a small one). The kill and stop paths of the
// demo's formation and of the test scripts signal only processes still running in the node's
// directory. Each case plants the pid of an unrelated live process where the stale one would be.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { killNodeProcesses, runsIn } from '../../src/cli/commands/demo-formation.js';
import { postgresBinDir } from '../../src/cli/commands/demo-postgres.js';
import { tempDir } from '../helpers/temp-dir.js';

const run = promisify(execFile);
const SCRIPTS = join(import.meta.dirname, '../../scripts');
const bystanders: ChildProcess[] = [];
afterEach(() => {
  for (const c of bystanders.splice(0)) c.kill('SIGKILL');
});

/** A process that has nothing to do with any node: it must outlive every call below. */
function bystander(as?: { uid: number; gid: number }): ChildProcess {
  const c = spawn('sleep', ['300'], { stdio: 'ignore', ...as });
  bystanders.push(c);
  return c;
}

const alive = (c: ChildProcess) => c.exitCode === null && c.signalCode === null && runsIn(c.pid!, '300');

/** DIR/NAME with a postmaster.pid naming `pid`, as a node killed before leaves it. */
function staleNode(pid: number, name = 'n1'): string {
  const dir = tempDir().path;
  mkdirSync(join(dir, name));
  writeFileSync(join(dir, name, 'postmaster.pid'), `${pid}\n${join(dir, name)}\n`);
  writeFileSync(join(dir, 'nodes'), `${name} 1\n`);
  return dir;
}

/** The postgres user's ids when we are root (the scripts run the server's tools as it), else none. */
async function postgresUser(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const [uid, gid] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

const settle = () => new Promise((r) => setTimeout(r, 100));

describe('stale pids of killed nodes', () => {
  it('demo formation: signals a root only while it runs in the node directory, with its descendants', async () => {
    const other = bystander();
    const dir = staleNode(other.pid!);
    expect(killNodeProcesses(join(dir, 'n1'), [other.pid!, 0])).toEqual([]);
    await settle();
    expect(alive(other)).toBe(true);
    // A process that does run there (its command line names the directory) goes, children too.
    const node = spawn('sh', ['-c', 'sleep 300 & wait', join(dir, 'n1')], { stdio: 'ignore' });
    bystanders.push(node);
    await settle();
    const killed = killNodeProcesses(join(dir, 'n1'), [node.pid!]);
    expect(killed.length).toBe(2);
    await new Promise((r) =>
      node.exitCode !== null || node.signalCode !== null ? r(0) : node.once('exit', r),
    );
    expect(node.signalCode).toBe('SIGKILL');
  });

  it.each(['pg-auto-failover.sh', 'pg-replica-set.sh'])(
    '%s kill: a node whose postmaster.pid is stale is not running; the pid’s process lives',
    async (script) => {
      const other = bystander();
      const dir = staleNode(other.pid!);
      const r = await run('bash', [join(SCRIPTS, script), 'kill', dir, 'n1']).catch((e) => e);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('n1 is not running');
      await settle();
      expect(alive(other)).toBe(true);
    },
  );

  it.runIf(postgresBinDir() !== undefined)(
    'pg-replica-set.sh stop: pg_ctl is not run on a stale postmaster.pid (it would signal its pid)',
    async () => {
      // As root the script runs pg_ctl as postgres, which can signal only postgres's processes:
      // another test's server, say. The bystander is one of them.
      const owner = await postgresUser();
      const other = bystander(owner);
      const dir = staleNode(other.pid!);
      writeFileSync(join(dir, 'n1', 'PG_VERSION'), '15\n');
      // As a replica set's directory is: the server's owner reads its files.
      if (owner !== undefined) {
        chmodSync(dir, 0o755);
        for (const f of ['n1', 'n1/postmaster.pid', 'n1/PG_VERSION'])
          chownSync(join(dir, f), owner.uid, owner.gid);
      }
      await run('bash', [join(SCRIPTS, 'pg-replica-set.sh'), 'stop', dir]);
      await settle();
      expect(alive(other)).toBe(true);
    },
  );
});
