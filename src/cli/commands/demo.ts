import type { ChildProcess } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  createReadStream,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, restrictUmask } from '../../os/private-files.js';
import type { DownloadView, SentView, ShowMessagesResult, UploadResult } from '../../peer/client.js';
import { callDaemon } from '../../peer/client.js';
import type { MessagePage, MessageStatus } from '../../protocol/api.js';
import type { PendingSendView } from '../../protocol/control.js';
import { CoterieError } from '../../protocol/errors.js';
import { countOf, formatBytes, formatContributions, formatRate } from '../format.js';
import { exitedUnasked, type Spawned, spawnCoterie, stopProcess } from '../processes.js';
import { createProgressRenderer } from '../progress.js';
import { explainCatchUp, sayNothingLost, startClusterTrackers, startOneTracker } from './demo-trackers.js';
import { askLoginLink } from './ui.js';

const PEERS = ['alice', 'bob', 'carol', 'dave'] as const;
const SHARERS = ['alice', 'bob', 'carol'] as const;
const GROUP = 'films';
const FILE_NAME = 'big-buck-bunny.bin';
const DEFAULT_SIZE_MIB = 256;

interface DemoFlags {
  keep: boolean;
  cluster: boolean;
  sizeMib?: string;
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new CoterieError('UNAVAILABLE', `the demo gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Incompressible, non-repeating bytes, fast: 1 MiB of random data per write. */
function generateFile(path: string, bytes: number): void {
  const fd = openSync(path, 'w', PRIVATE_FILE_MODE);
  const chunk = Buffer.allocUnsafe(1024 * 1024);
  try {
    for (let left = bytes; left > 0; left -= chunk.length) {
      randomFillSync(chunk);
      writeSync(fd, chunk, 0, Math.min(chunk.length, left));
    }
  } finally {
    closeSync(fd);
  }
}

async function sha256Of(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

function sizeMib(flag: string | undefined): number {
  const raw = flag ?? process.env.COTERIE_DEMO_SIZE_MIB ?? String(DEFAULT_SIZE_MIB);
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 64 * 1024) {
    throw new CoterieError('USAGE', `--size-mib must be an integer between 1 and 65536, not '${raw}'`);
  }
  return n;
}

/**
 * `coterie demo`: the main story with real processes in a temporary
 * directory — a tracker, alice, bob, carol and dave; a group; three sharers
 * of one generated file; dave downloads it from all three with a live
 * progress bar; it is verified and the per-peer distribution printed.
 */
export async function runDemo(flags: DemoFlags, out: NodeJS.WriteStream = process.stdout): Promise<number> {
  const mib = sizeMib(flags.sizeMib);
  // The demo's tracker and peers hold accounts, tokens and messages like any: private to this user,
  // and so are the logs and files made here (the children inherit the umask).
  restrictUmask();
  const root = mkdtempSync(join(tmpdir(), 'coterie-demo-'));
  const say = (s: string) => out.write(`${s}\n`);
  const peerProcs = new Map<string, Spawned>();
  // Every process by name, and those the story stops on purpose: any other that exits is a failure.
  const children: [string, Spawned][] = [];
  const stopped = new Set<ChildProcess>();
  const dirs = Object.fromEntries(PEERS.map((p) => [p, join(root, p)])) as Record<
    (typeof PEERS)[number],
    string
  >;
  const t0 = Date.now();
  let ok = false;
  let stopStore: (() => Promise<void>) | undefined;
  const cleanup = async () => {
    await Promise.all(children.map(([, c]) => stopProcess(c.child)));
    await stopStore?.();
    rmSync(root, { recursive: true, force: true });
  };
  const onSignal = () => {
    void cleanup().then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    say(`coterie demo in ${root}`);
    const trackers = flags.cluster
      ? await startClusterTrackers(root, flags.keep, (stop) => {
          stopStore = stop;
        })
      : await startOneTracker(root, flags.keep);
    for (const [i, t] of trackers.procs.entries()) {
      children.push([trackers.procs.length === 1 ? 'tracker' : `tracker t${i + 1}`, t]);
    }
    for (const line of trackers.lines) say(line);
    const url = trackers.urls.join(',');
    const startPeer = async (name: (typeof PEERS)[number]) => {
      const p = await spawnCoterie(
        ['peer', '--data-dir', dirs[name], '--tracker', url, '--no-shell'],
        /^peer [0-9a-f]{64} serving on/,
        { logFile: join(root, `${name}.log`), detached: flags.keep },
      );
      children.push([`${name}'s peer`, p]);
      peerProcs.set(name, p);
      return p;
    };
    await Promise.all(
      PEERS.map(async (name) => {
        mkdirSync(dirs[name], { mode: PRIVATE_DIR_MODE });
        const p = await startPeer(name);
        say(`${name.padEnd(8)} ${p.line.split(' (')[0]}`);
      }),
    );
    const run = (
      who: (typeof PEERS)[number],
      name: string,
      args: string[],
      onProgress?: Parameters<typeof callDaemon>[3],
    ) => callDaemon(dirs[who], name, args, onProgress);

    for (const name of PEERS) {
      await run(name, 'create_user', [name, `${name}-secret-pw`]);
      await run(name, 'login', [name, `${name}-secret-pw`]);
    }
    say('users    alice, bob, carol, dave created and logged in');
    await run('alice', 'create_group', [GROUP]);
    for (const name of ['bob', 'carol', 'dave'] as const) await run(name, 'join_group', [GROUP]);
    for (const name of ['bob', 'carol', 'dave'] as const) await run('alice', 'accept_request', [GROUP, name]);
    say(`group    '${GROUP}' owned by alice; bob, carol and dave asked to join and alice accepted`);

    const source = join(dirs.alice, FILE_NAME);
    generateFile(source, mib * 1024 * 1024);
    for (const name of ['bob', 'carol'] as const) copyFileSync(source, join(dirs[name], FILE_NAME));
    say(
      `file     ${FILE_NAME}: ${formatBytes(mib * 1024 * 1024)} of random bytes, one copy each for alice, bob, carol`,
    );
    const tHash = Date.now();
    const shares = (await Promise.all(
      SHARERS.map((name) => run(name, 'upload_file', [join(dirs[name], FILE_NAME), GROUP])),
    )) as UploadResult[];
    say(
      `shared   by alice, bob and carol as ${shares[0]!.fileId.slice(0, 16)}… (${shares[0]!.pieces} pieces of ${formatBytes(shares[0]!.pieceSize)}; hashed in ${((Date.now() - tHash) / 1000).toFixed(1)} s)`,
    );

    const dest = join(dirs.dave, 'downloads');
    mkdirSync(dest, { mode: PRIVATE_DIR_MODE });
    say('dave     download_file films big-buck-bunny.bin --wait');
    const bar = createProgressRenderer(process.stderr);
    let lastQuarter = -1;
    const done = (await run('dave', 'download_file', [GROUP, FILE_NAME, dest, '--wait'], {
      onProgress: (p) => {
        bar.update(p);
        if (!process.stderr.isTTY) {
          const q = Math.floor((p.doneBytes / Math.max(1, p.totalBytes)) * 4);
          if (q > lastQuarter && q < 4) {
            lastQuarter = q;
            say(
              `         ${q * 25}% · ${formatRate(p.rateBytesPerSec ?? 0)} · ${countOf(p.peers ?? 0, 'peer')}`,
            );
          }
        }
      },
    })) as DownloadView;
    bar.stop();
    const [a, b] = await Promise.all([sha256Of(source), sha256Of(done.dest)]);
    if (a !== b) throw new CoterieError('DOWNLOAD_FAILED', `verification failed: ${a} ≠ ${b}`);
    say(
      `done     ${formatBytes(done.size)} in ${(((done.endedAt ?? Date.now()) - done.startedAt) / 1000).toFixed(1)} s at ${formatRate(done.rateBytesPerSec)} from ${countOf(done.peers, 'peer')}`,
    );
    say(`verified sha256 ${a} identical`);
    say('pieces per peer:');
    say(
      formatContributions(done)
        .split('\n')
        .map((l) => `  ${l}`)
        .join('\n'),
    );

    // -- messages: a conversation, a message to a peer that is offline, a topic
    const quote = (m: { sender: string; body: string }) => `${m.sender}: “${m.body}”`;
    const hello = (await run('alice', 'send_msg', ['bob', 'the film is up, enjoy'])) as SentView;
    say(`message  alice → bob  (id ${hello.id}, ${hello.state})`);
    await waitFor('bob to receive it', async () =>
      ((await run('bob', 'show_messages', ['alice', '--unread'])) as ShowMessagesResult).messages.some(
        (m) => {
          if (m.messageId !== hello.id) return false;
          say(`         bob sees ${quote(m)} and it is marked read`);
          return true;
        },
      ),
    );
    await run('bob', 'send_msg', ['alice', 'thanks! downloading it now']);
    await waitFor("alice's receipt", async () => {
      const st = (await run('alice', 'message_status', [hello.id])) as MessageStatus;
      if (st.state !== 'read') return false;
      say(`         message_status ${hello.id.slice(0, 12)}…: ${st.state} by bob`);
      return true;
    });
    if (flags.cluster) {
      stopped.add(trackers.procs[0]!.child);
      trackers.procs[0]!.child.kill('SIGKILL');
      say('cluster  tracker t1 SIGKILLed mid-story: its peers move to t2 and t3 by themselves');
    }
    stopped.add(peerProcs.get('carol')!.child);
    await stopProcess(peerProcs.get('carol')!.child);
    say('offline  carol stops her peer');
    // With a pg_auto_failover formation its primary dies too: the next sends meet the failover.
    const followed = await trackers.failStore?.(say);
    const late = (await run('alice', 'send_msg', ['carol', 'we watch it tonight at 8'])) as
      | SentView
      | PendingSendView;
    await run('alice', 'send_group_msg', [GROUP, 'thanks everyone for seeding']);
    // Right after a tracker's death the send may find no tracker within its retry window: it then
    // waits in alice's outbox, sent by her daemon when one answers.
    say(
      late.id === null
        ? 'message  alice → carol while she is away: pending (in alice’s outbox until a tracker answers)'
        : `message  alice → carol while she is away: ${((await run('alice', 'message_status', [late.id])) as MessageStatus).state} (stored on the tracker)`,
    );
    await followed?.();
    await startPeer('carol');
    // In a cluster alice's sends may have waited in her outbox through a failover: they go out
    // when her session catches up, which takes longer on a loaded machine.
    await waitFor(
      'carol to catch up',
      async () => {
        // Peeked until both are there: what show_messages shows is marked read, and the two may
        // arrive apart (a look between them would leave one unread message for every later look).
        const peek = (await run('carol', 'show_messages', ['--unread', '--peek'])) as ShowMessagesResult;
        if (peek.messages.length < 2) return false;
        const got = (await run('carol', 'show_messages', ['--unread'])) as ShowMessagesResult;
        say(`back     carol restarts and catches up: ${got.messages.map(quote).join(', ')}`);
        return true;
      },
      flags.cluster ? 45_000 : 15_000,
    ).catch(async (err: Error) => {
      throw new CoterieError('UNAVAILABLE', `${err.message}: ${await explainCatchUp(run, 'carol', root)}`);
    });
    await run('alice', 'create_topic', [GROUP, 'releases']);
    await run('dave', 'subscribe', [GROUP, 'releases']);
    await run('bob', 'publish', [GROUP, 'releases', 'director’s cut next week']);
    // A publish during or just after a failover may wait in bob's outbox a moment: fetch until it is there.
    await waitFor(
      'dave to fetch bob’s release',
      async () => {
        const page = (await run('dave', 'fetch_messages', [GROUP, 'releases', '--from', '1'])) as MessagePage;
        if (page.messages.length === 0) return false;
        say(
          `topic    ${GROUP}:releases — dave subscribed, bob published; fetch_messages: ${page.messages.map(quote).join(', ')}`,
        );
        return true;
      },
      flags.cluster ? 45_000 : 15_000,
    );
    if (flags.cluster) await sayNothingLost(run, say);
    // A tracker or peer that died on its way (a crash the others survived) fails the demo.
    const died = exitedUnasked(children, stopped);
    if (died.length > 0) throw new CoterieError('INTERNAL', died.join('; '));
    ok = true;
    if (flags.keep) {
      say('\nleft running (stop them with: coterie --data-dir DIR quit, and kill the tracker):');
      for (const t of trackers.procs) {
        if (!stopped.has(t.child)) say(`  tracker pid ${t.child.pid}, logs in ${root}`);
      }
      for (const line of trackers.keepLines ?? []) say(line);
      say(`  trackers ${url}`);
      for (const name of PEERS) {
        say(`  ${name.padEnd(6)} coterie --data-dir ${dirs[name]} list_files ${GROUP}`);
        say(`         web UI (one use): ${(await askLoginLink(dirs[name])).url}`);
      }
      for (const [, c] of children) c.child.unref();
    }
    say(`demo finished in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (!flags.keep || !ok) await cleanup();
  }
}

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('play the main story end to end: a tracker and four peers in a temporary directory')
    .option('--keep', 'leave the tracker and peers running and print how to reach them', false)
    .option(
      '--cluster',
      'three trackers on a throwaway PostgreSQL (needs its server binaries), one SIGKILLed mid-story; with pg_autoctl installed, a pg_auto_failover formation whose primary is SIGKILLed too',
      false,
    )
    .option(
      '--size-mib <n>',
      `size of the shared file (default ${DEFAULT_SIZE_MIB}; env COTERIE_DEMO_SIZE_MIB)`,
    )
    .action(async (flags: DemoFlags) => {
      process.exitCode = await runDemo(flags);
    });
}
