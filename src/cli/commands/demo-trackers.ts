import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PRIVATE_DIR_MODE } from '../../os/private-files.js';
import type { ShowMessagesResult, ShowSentResult, StatusView } from '../../protocol/control.js';
import { CoterieError } from '../../protocol/errors.js';
import { countOf } from '../format.js';
import { type Spawned, spawnCoterie } from '../processes.js';
import {
  type DemoFormation,
  formationBinDir,
  formationPackages,
  startDemoFormation,
} from './demo-formation.js';
import { startDemoPostgres } from './demo-postgres.js';

/** The demo's trackers: their processes, the URLs peers are given (with fingerprints), what to say. */
export interface DemoTrackers {
  procs: Spawned[];
  urls: string[];
  lines: string[];
  /** With --keep: how to stop what the trackers stand on (the cluster's PostgreSQL) by hand. */
  keepLines?: string[];
  /** Stops what the trackers stand on (the cluster's PostgreSQL), after the processes. */
  stop?: () => Promise<void>;
  /**
   * With a pg_auto_failover formation: SIGKILLs the store's primary and says so; the function it
   * returns waits for the standby's promotion and for the live trackers to follow it, and says so.
   */
  failStore?: (say: (s: string) => void) => Promise<() => Promise<void>>;
}

const LISTENING = /listening on (https?:\/\/\S+)/;

async function spawnTracker(root: string, name: string, extra: string[], keep: boolean): Promise<Spawned> {
  const dir = join(root, name);
  mkdirSync(dir, { mode: PRIVATE_DIR_MODE });
  return spawnCoterie(
    ['tracker', '--port', '0', '--data-dir', dir, '--log-level', 'warn', '--scrypt-log-n', '12', ...extra],
    LISTENING,
    { logFile: join(root, `${name}.log`), detached: keep },
  );
}

const urlOf = (t: Spawned) => LISTENING.exec(t.line)![1]!;

/** One tracker on the embedded SQLite store (the default story). */
export async function startOneTracker(root: string, keep: boolean): Promise<DemoTrackers> {
  const tracker = await spawnTracker(root, 'tracker', [], keep);
  return { procs: [tracker], urls: [urlOf(tracker)], lines: [`tracker  ${urlOf(tracker)}`] };
}

/**
 * `demo --cluster`: three trackers sharing a throwaway PostgreSQL and one key
 * file, started one after the other (the first runs the migrations). Each
 * serves TLS with its own certificate; peers are given all three URLs with
 * their fingerprints, and pin them.
 */
export async function startClusterTrackers(
  root: string,
  keep: boolean,
  register: (stop: () => Promise<void>) => void,
): Promise<DemoTrackers> {
  const store = await startStore(register);
  const procs: Spawned[] = [];
  try {
    const shared = ['--store', store.url, '--key-file', join(root, 'tracker.key')];
    for (const name of ['t1', 't2', 't3']) procs.push(await spawnTracker(root, name, shared, keep));
  } catch (err) {
    for (const p of procs) p.child.kill('SIGKILL');
    await store.stop();
    throw err;
  }
  const urls = procs.map(urlOf);
  const live = () => procs.filter((p) => p.child.exitCode === null && p.child.signalCode === null).length;
  return {
    procs,
    urls,
    lines: [...store.lines, ...urls.map((u, i) => `tracker  t${i + 1} ${u}`)],
    // Every process of the store names its directory: one pkill stops them all.
    keepLines: [`  store  ${store.dir}: pkill -KILL -f ${store.dir}; rm -rf ${store.dir}`],
    stop: store.stop,
    ...(store.formation === undefined ? {} : { failStore: failStore(store.formation, live) }),
  };
}

interface DemoStore {
  url: string;
  /** Its directory, which every one of its processes names. */
  dir: string;
  lines: string[];
  stop: () => Promise<void>;
  formation?: DemoFormation;
}

/** A pg_auto_failover formation when pg_autoctl is installed, else one throwaway PostgreSQL. */
async function startStore(register: (stop: () => Promise<void>) => void): Promise<DemoStore> {
  const bin = formationBinDir();
  if (bin === undefined) {
    const store = await startDemoPostgres();
    register(store.stop);
    return {
      ...store,
      lines: [
        `store    PostgreSQL at ${store.url} (throwaway)`,
        `         (for a pg_auto_failover formation, its primary killed mid-story too: install ${formationPackages()})`,
      ],
    };
  }
  const startedAt = Date.now();
  const f = await startDemoFormation(bin, register);
  const took = ((Date.now() - startedAt) / 1000).toFixed(1);
  return {
    url: f.url,
    dir: f.dir,
    stop: f.stop,
    formation: f,
    lines: [
      `store    pg_auto_failover formation (throwaway, in ${f.dir}): monitor ${f.hosts.get('monitor')}, primary n1 ${f.hosts.get('n1')}, synchronous standby n2 ${f.hosts.get('n2')} (started in ${took} s)`,
      `         the trackers are given ${f.url}`,
    ],
  };
}

function failStore(f: DemoFormation, liveTrackers: () => number): NonNullable<DemoTrackers['failStore']> {
  return async (say) => {
    const old = await f.primary();
    f.kill(old);
    const killedAt = Date.now();
    say(`store    primary ${old} SIGKILLed (its pg_autoctl, postgres and backends: a machine that dies)`);
    return async () => {
      const now = await f.promotedAfter(old);
      const promotedIn = ((Date.now() - killedAt) / 1000).toFixed(1);
      say(
        `promoted standby ${now} ${f.hosts.get(now)} by the monitor, writable ${promotedIn} s after the kill`,
      );
      const trackers = liveTrackers();
      await f.trackersOn(now, trackers);
      say(`follow   the ${countOf(trackers, 'live tracker')} found ${now} by themselves, from the same URL`);
    };
  };
}

type Run = (who: 'alice' | 'bob' | 'carol' | 'dave', name: string, args: string[]) => Promise<unknown>;

/**
 * After the SIGKILL: each peer's tracker now, and every message alice sent,
 * before the kill and after it, delivered or read (acknowledged sends were in
 * the shared store, not in the dead tracker; a send no tracker took in time
 * waited in her outbox and went out by itself).
 */
export async function sayNothingLost(run: Run, say: (s: string) => void): Promise<void> {
  // A peer moving between trackers (after the kill, or sent to a less loaded one) has none for a
  // moment: ask again until each is on one.
  const deadline = Date.now() + 30_000;
  for (;;) {
    const where = await Promise.all(
      (['alice', 'bob', 'carol', 'dave'] as const).map(
        async (who) => [who, ((await run(who, 'status', [])) as StatusView).tracker] as const,
      ),
    );
    if (where.every(([, tracker]) => tracker !== null) || Date.now() > deadline) {
      say(`after    the kill: ${where.map(([who, tracker]) => `${who} on ${tracker ?? 'none'}`).join(', ')}`);
      break;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  for (;;) {
    const { messages } = (await run('alice', 'show_sent', [])) as ShowSentResult;
    const arrived = messages.filter((m) => m.mark === 'delivered' || m.mark === 'read');
    if (arrived.length === messages.length) {
      say(
        `nothing  lost: ${arrived.length} of ${messages.length} messages alice sent delivered or read (${messages.map((m) => m.mark).join(', ')}), the file downloaded and verified`,
      );
      return;
    }
    if (Date.now() > deadline) {
      throw new CoterieError(
        'UNAVAILABLE',
        `messages not delivered across the tracker's death: ${messages.map((m) => m.mark).join(', ')}`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Why a peer that came back has not caught up: its session, what it holds, what alice's daemon
 * says of what she sent, and the last warnings and errors each process logged (the demo's
 * directory is removed on failure). For the demo's failure message: a miss must say where it is.
 */
export async function explainCatchUp(run: Run, who: 'carol', root: string): Promise<string> {
  const lines: string[] = [];
  const tryIt = async (what: string, f: () => Promise<string>) => {
    try {
      lines.push(`${what}: ${await f()}`);
    } catch (err) {
      lines.push(`${what}: ${(err as Error).message}`);
    }
  };
  await tryIt(`${who}'s session`, async () => {
    const s = (await run(who, 'status', [])) as StatusView;
    return `${s.session} on ${s.tracker ?? 'none'}`;
  });
  await tryIt(`${who}'s messages`, async () => {
    const { messages } = (await run(who, 'show_messages', [])) as ShowMessagesResult;
    return messages.map((m) => `${m.streamId}#${m.seq} ${m.sender}`).join(', ') || 'none';
  });
  await tryIt('alice sent', async () => {
    const { messages } = (await run('alice', 'show_sent', [])) as ShowSentResult;
    return messages.map((m) => `${m.streamId}#${m.seq ?? '-'} ${m.mark}`).join(', ');
  });
  for (const file of readdirSync(root).filter((f) => f.endsWith('.log'))) {
    // pino's warn and error lines (levels 40 and 50), the last few of each process.
    const bad = readFileSync(join(root, file), 'utf8')
      .split('\n')
      .filter((l) => /"level":(40|50)/.test(l))
      .slice(-4);
    if (bad.length > 0) lines.push(`${file}: ${bad.map((l) => l.slice(0, 400)).join(' | ')}`);
  }
  return lines.join('; ');
}
