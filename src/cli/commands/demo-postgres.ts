import { execFile } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CoterieError } from '../../protocol/errors.js';

/**
 * A throwaway PostgreSQL for `coterie demo --cluster`: the machine's server
 * binaries (Debian's postgresql package), a fresh cluster in a temporary
 * directory, trust authentication on a loopback port and a socket in that
 * directory, removed at stop. PostgreSQL refuses to run as root, so as root
 * it runs as the `postgres` user (which Debian's package creates).
 */
export interface DemoPostgres {
  /** postgres://postgres@127.0.0.1:PORT/postgres */
  url: string;
  /** The server's directory (its data, socket and log), named by its processes. */
  dir: string;
  stop(): Promise<void>;
}

const run = promisify(execFile);

/** Debian's versioned directories first (newest), then wherever PATH has initdb and pg_ctl. */
export function postgresBinDir(
  debianRoot = '/usr/lib/postgresql',
  path = process.env.PATH ?? '',
): string | undefined {
  const debian = existsSync(debianRoot)
    ? readdirSync(debianRoot)
        .sort((a, b) => Number(b) - Number(a))
        .map((v) => join(debianRoot, v, 'bin'))
    : [];
  const onPath = path.split(':').filter((d) => d !== '');
  return [...debian, ...onPath].find((d) => existsSync(join(d, 'initdb')) && existsSync(join(d, 'pg_ctl')));
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The uid and gid of `postgres` (root must hand the server over to it). */
export async function postgresUser(): Promise<{ uid: number; gid: number }> {
  try {
    const [uid, gid] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  } catch {
    throw new CoterieError(
      'UNAVAILABLE',
      "demo --cluster as root runs PostgreSQL as the user postgres, and there is none: install Debian's postgresql package (it creates it), or run the demo as another user",
    );
  }
}

export async function startDemoPostgres(): Promise<DemoPostgres> {
  const bin = postgresBinDir();
  if (bin === undefined) {
    throw new CoterieError(
      'UNAVAILABLE',
      'demo --cluster needs the PostgreSQL server binaries (initdb, pg_ctl): on Debian or Ubuntu, sudo apt-get install postgresql; elsewhere, PostgreSQL 13 or newer with its bin directory on PATH',
    );
  }
  const asRoot = userInfo().uid === 0;
  const owner = asRoot ? await postgresUser() : undefined;
  // Outside the demo's own directory, which is private to us (0700): the server's owner must reach it.
  const dir = mkdtempSync(join(tmpdir(), 'coterie-demo-pg-'));
  chmodSync(dir, 0o700);
  if (owner !== undefined) chownSync(dir, owner.uid, owner.gid);
  const data = join(dir, 'data');
  const pg = (tool: string, args: string[]) =>
    asRoot ? run('runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]) : run(join(bin, tool), args);
  const port = await freePort();
  try {
    await pg('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C']);
    await pg('pg_ctl', [
      '-D',
      data,
      '-l',
      join(dir, 'postgres.log'),
      '-w',
      '-o',
      `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c shared_buffers=64MB -c max_connections=100`,
      'start',
    ]);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    const e = err as Error & { stderr?: string };
    throw new CoterieError(
      'UNAVAILABLE',
      `could not start PostgreSQL for the demo: ${e.stderr?.trim() || e.message}`,
    );
  }
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    dir,
    async stop() {
      await pg('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']).catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
