import { execFile, spawn } from 'node:child_process';
import {
  appendFileSync,
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { CoterieError } from '../../protocol/errors.js';
import { freePort, postgresBinDir, postgresUser } from './demo-postgres.js';

/**
 * `coterie demo --cluster` with pg_auto_failover installed: the store of
 * docs/store-failover.md on loopback — a monitor, a primary and its
 * synchronous standby, the monitor's health checks tuned so that a dead
 * primary's standby is promoted in seconds — in a temporary directory, run as
 * the `postgres` user when the demo runs as root. The same steps as
 * scripts/pg-auto-failover.sh (which the tests use; the package ships no
 * scripts/).
 */
export interface DemoFormation {
  /** The URL `pg_autoctl show uri` prints, with the user added: both data nodes, read-write. */
  url: string;
  dir: string;
  /** `127.0.0.1:PORT` of the monitor and each data node. */
  hosts: Map<string, string>;
  /** The data node the monitor holds primary now. */
  primary(): Promise<string>;
  /** SIGKILLs a data node's pg_autoctl, its postgres and every backend: a machine that dies. */
  kill(node: string): void;
  /** Waits until a node other than `dead` is the writable primary; its name. */
  promotedAfter(dead: string): Promise<string>;
  /** Waits until `trackers` trackers hold their LISTEN connection on `node`. */
  trackersOn(node: string, trackers: number): Promise<void>;
  stop(): Promise<void>;
}

const run = promisify(execFile);
const DATA_NODES = ['n1', 'n2'] as const;
/** docs/store-failover.md: promotion in seconds rather than about 51 s, and the trade-off. */
const TUNED_HEALTH_CHECKS = [
  'health_check_period = 1000',
  'health_check_max_retries = 1',
  'health_check_retry_delay = 1000',
  'node_considered_unhealthy_timeout = 2000',
  'primary_demote_timeout = 2000',
];
/**
 * What pg_autoctl would otherwise choose: shared_buffers at 25 % of RAM, listen_addresses '*'.
 * Read last, and copied to the standby by its base backup. fsync stays on: this is a demo of
 * a store, and the demo kills processes, not the machine, either way.
 */
const SMALL_LOOPBACK_CONF = `
listen_addresses = '127.0.0.1'
shared_buffers = '32MB'
max_connections = 100
wal_keep_size = '128MB'
`;

/** The bin directory of a PostgreSQL whose pgautofailover extension is installed, when pg_autoctl is on PATH. */
export function formationBinDir(
  debianRoot = '/usr/lib/postgresql',
  path = process.env.PATH ?? '',
): string | undefined {
  const onPath = path.split(':').some((d) => d !== '' && existsSync(join(d, 'pg_autoctl')));
  if (!onPath || !existsSync(debianRoot)) return undefined;
  return readdirSync(debianRoot)
    .sort((a, b) => Number(b) - Number(a))
    .filter((v) =>
      existsSync(
        join(debianRoot, '..', '..', 'share', 'postgresql', v, 'extension', 'pgautofailover.control'),
      ),
    )
    .map((v) => join(debianRoot, v, 'bin'))
    .find((d) => existsSync(join(d, 'initdb')) && existsSync(join(d, 'pg_ctl')));
}

/** What to install for the formation: Debian's packages for the PostgreSQL found (15 if none). */
export function formationPackages(): string {
  const major = /\/(\d+)\/bin$/.exec(postgresBinDir() ?? '')?.[1] ?? '15';
  return `postgresql-${major}-auto-failover pg-auto-failover-cli`;
}

/**
 * Whether `pid` is still a process of the node in `path` (its command line names the directory,
 * as pg_autoctl's `--pgdata` and postgres's `-D` do). A pid from postmaster.pid, or of a child
 * that died, names whatever process has it now: on a busy machine pids wrap (at 32,768 on a
 * small one) within minutes, and a SIGKILL sent by a stale pid killed another program's process.
 */
export function runsIn(pid: number, path: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(path);
  } catch {
    return false;
  }
}

/**
 * SIGKILLs each of `roots` that is still a process of the node in `path`, with all its
 * descendants (a supervisor's keeper services, a postmaster's backends); the others are left
 * alone. Returns the pids signalled.
 */
export function killNodeProcesses(path: string, roots: readonly number[]): number[] {
  const pids = roots.filter((pid) => pid > 0 && runsIn(pid, path)).flatMap(tree);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  return pids;
}

/** The pids of a process and all its descendants. */
function tree(pid: number): number[] {
  let children: number[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      if (text !== '') children = children.concat(text.split(' ').map(Number));
    }
  } catch {
    return [];
  }
  return [pid, ...children.flatMap(tree)];
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const got = await probe().catch(() => undefined);
    if (got !== undefined) return got;
    if (Date.now() > end) throw new CoterieError('UNAVAILABLE', `the demo gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `register` gets the stop function before anything starts: a Ctrl-C half-way stops what did. */
export async function startDemoFormation(
  bin: string,
  register: (stop: () => Promise<void>) => void,
): Promise<DemoFormation> {
  const owner = userInfo().uid === 0 ? await postgresUser() : undefined;
  const dir = mkdtempSync(join(tmpdir(), 'coterie-demo-pgaf-'));
  chmodSync(dir, 0o755);
  for (const d of ['config', 'data', 'run']) mkdirSync(join(dir, 'xdg', d), { recursive: true, mode: 0o700 });
  if (owner !== undefined) {
    for (const d of ['', 'xdg', 'xdg/config', 'xdg/data', 'xdg/run'])
      chownSync(join(dir, d), owner.uid, owner.gid);
  }
  // pg_autoctl keeps its config, state and pid files under XDG_*: in the demo's directory.
  const env = {
    ...process.env,
    PATH: `${bin}:${process.env.PATH ?? ''}`,
    HOME: dir,
    XDG_CONFIG_HOME: join(dir, 'xdg', 'config'),
    XDG_DATA_HOME: join(dir, 'xdg', 'data'),
    XDG_RUNTIME_DIR: join(dir, 'xdg', 'run'),
    PG_CONFIG: join(bin, 'pg_config'),
    PGHOST: '127.0.0.1',
  };
  const as = { ...owner, env, cwd: dir };
  const exec = (file: string, args: string[]) => run(file, args, { ...as, timeout: 120_000 });
  const hosts = new Map<string, string>();
  const supervisors = new Map<string, number>();
  /** `pg_autoctl ARGS` in the background, in its own session, logging to DIR/NAME.log. */
  const background = (name: string, args: string[]) => {
    const log = openSync(join(dir, `${name}.log`), 'a', 0o600);
    const child = spawn('pg_autoctl', args, { ...as, detached: true, stdio: ['ignore', log, log] });
    closeSync(log);
    child.on('error', () => {});
    child.unref();
    if (child.pid !== undefined) supervisors.set(name, child.pid);
  };
  const initdb = async (name: string) => {
    await exec(join(bin, 'initdb'), [
      '-D',
      join(dir, name),
      '-U',
      'postgres',
      '--auth=trust',
      '--encoding=UTF8',
      '--locale=C',
    ]);
    appendFileSync(join(dir, name, 'postgresql.auto.conf'), SMALL_LOOPBACK_CONF);
  };
  const sql = async <R extends pg.QueryResultRow>(node: string, text: string, db = 'postgres') => {
    const c = new pg.Client({
      connectionString: `postgres://postgres@${hosts.get(node)}/${db}`,
      connectionTimeoutMillis: 2_000,
      query_timeout: 5_000,
      application_name: 'coterie-demo',
    });
    c.on('error', () => {});
    try {
      await c.connect();
      return (await c.query<R>(text)).rows;
    } finally {
      await c.end().catch(() => {});
    }
  };
  const states = () =>
    sql<{ nodename: string; reportedstate: string; goalstate: string }>(
      'monitor',
      'SELECT nodename, reportedstate, goalstate FROM pgautofailover.node',
      'pg_auto_failover',
    );
  /** A node settled in one of `wanted` (reported and goal alike). */
  const inState = async (wanted: string[], except?: string) =>
    (await states()).find(
      (n) => n.nodename !== except && n.reportedstate === n.goalstate && wanted.includes(n.reportedstate),
    )?.nodename;
  /** postmaster.pid's lines: the postmaster's pid first, its System V segment's key and id on the 7th. */
  const pidFile = (node: string) => {
    const path = join(dir, node, 'postmaster.pid');
    return existsSync(path) ? readFileSync(path, 'utf8').split('\n') : [];
  };
  // A node killed mid-story is killed again at the end: its supervisor's pid and its
  // postmaster.pid are stale by then, and only processes still running in its directory go.
  const kill = (node: string) =>
    killNodeProcesses(join(dir, node), [supervisors.get(node) ?? 0, Number(pidFile(node)[0] ?? 0)]);
  const stop = async () => {
    for (const node of supervisors.keys()) kill(node);
    // A SIGKILLed postmaster leaves its small System V segment behind: removed with the rest.
    for (const node of supervisors.keys()) {
      const shmid = pidFile(node)[6]?.trim().split(/\s+/)[1];
      if (shmid !== undefined && /^\d+$/.test(shmid)) await run('ipcrm', ['-m', shmid]).catch(() => {});
    }
    rmSync(dir, { recursive: true, force: true });
  };
  register(stop);
  const monitorUrl = () => `postgres://autoctl_node@${hosts.get('monitor')}/pg_auto_failover?sslmode=disable`;
  const common = [
    '--hostname',
    '127.0.0.1',
    '--auth',
    'trust',
    '--no-ssl',
    '--ssl-mode',
    'disable',
    '--pgctl',
    join(bin, 'pg_ctl'),
  ];
  try {
    await initdb('monitor');
    hosts.set('monitor', `127.0.0.1:${await freePort()}`);
    const monitor = ['--pgdata', join(dir, 'monitor')];
    await exec('pg_autoctl', [
      'create',
      'monitor',
      ...monitor,
      '--pgport',
      hosts.get('monitor')!.split(':')[1]!,
      ...common,
    ]);
    // The monitor has no --listen: its pg_autoctl passes `-h *` to postgres unless configured.
    await exec('pg_autoctl', ['config', 'set', ...monitor, 'postgresql.listen_addresses', '127.0.0.1']);
    background('monitor', ['run', ...monitor]);
    await until(
      'the pg_auto_failover monitor',
      60_000,
      async () => (await sql('monitor', 'SELECT 1')).length,
    );
    for (const setting of TUNED_HEALTH_CHECKS) {
      await sql('monitor', `ALTER SYSTEM SET pgautofailover.${setting}`, 'pg_auto_failover');
    }
    await sql('monitor', 'SELECT pg_reload_conf()');
    for (const [i, node] of DATA_NODES.entries()) {
      hosts.set(node, `127.0.0.1:${await freePort()}`);
      // The first node is our initdb; the second its base backup, which pg_autoctl's pg_basebackup
      // starts with a spread checkpoint (minutes after CREATE DATABASE) unless one just ran.
      if (i === 0) await initdb(node);
      else await sql(DATA_NODES[0], 'CHECKPOINT');
      background(node, [
        'create',
        'postgres',
        '--pgdata',
        join(dir, node),
        '--pgport',
        hosts.get(node)!.split(':')[1]!,
        '--name',
        node,
        '--listen',
        '127.0.0.1',
        '--dbname',
        'coterie',
        '--monitor',
        monitorUrl(),
        ...common,
        '--run',
      ]);
      // One at a time: the first must be primary before the second can copy it.
      await until(`${node} to join the formation (see ${dir}/${node}.log)`, 180_000, async () =>
        i === 0 ? inState(['single']) : (await inState(['secondary'])) && (await inState(['primary'])),
      );
    }
    const uri = (
      await exec('pg_autoctl', ['show', 'uri', '--formation', 'default', ...monitor])
    ).stdout.trim();
    return {
      url: uri.replace(/^postgres(ql)?:\/\//, 'postgres://postgres@'),
      dir,
      hosts,
      primary: () => until('a primary', 30_000, () => inState(['primary', 'wait_primary', 'single'])),
      kill,
      promotedAfter: (dead) =>
        until('the standby to be promoted', 120_000, async () => {
          const node = await inState(['primary', 'wait_primary', 'single'], dead);
          return node !== undefined && (await sql(node, 'SELECT NOT pg_is_in_recovery() AS w'))[0]?.w
            ? node
            : undefined;
        }),
      trackersOn: (node, trackers) =>
        until(`${trackers} trackers on ${node}`, 60_000, async () => {
          const rows = await sql<{ n: number }>(
            node,
            "SELECT count(DISTINCT application_name)::int AS n FROM pg_stat_activity WHERE application_name LIKE 'coterie-listen-%'",
          );
          return rows[0]!.n >= trackers ? true : undefined;
        }).then(() => {}),
      stop,
    };
  } catch (err) {
    await stop();
    const e = err as Error & { stderr?: string };
    throw new CoterieError(
      'UNAVAILABLE',
      `could not start the pg_auto_failover formation: ${e.stderr?.trim() || e.message}`,
    );
  }
}
