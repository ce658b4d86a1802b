// Real peer daemons for the sharing benchmarks: a tracker, `coterie peer` processes that join
// one group through the control API (no CLI process per command), and a TCP relay that counts
// the bytes a seeder sends (TLS records and frames: what the bandwidth limits count).
import { type ChildProcess, spawn } from 'node:child_process';
import { truncateSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { callDaemon } from '../../src/peer/control/client.js';
import { BIN } from './bin.js';
import { spawnTracker, type TrackerProcess } from './tracker-process.js';

export interface BenchPeer {
  name: string;
  dir: string;
  child: ChildProcess;
  port: number;
  call<T>(command: string, ...args: string[]): Promise<T>;
}

export interface PeerSwarm {
  tracker: TrackerProcess;
  peers: BenchPeer[];
  stop(): Promise<void>;
}

/** Starts `coterie peer` in `root/name` and waits for its "serving on" line. */
export async function startBenchPeer(root: string, name: string, trackerUrl: string, args: string[] = []) {
  const dir = join(root, name);
  const child = spawn(
    process.execPath,
    [
      // BENCH_PEER_NODE_ARGS='--cpu-prof --cpu-prof-dir=DIR' profiles each peer (Node refuses
      // --cpu-prof in NODE_OPTIONS).
      ...(process.env.BENCH_PEER_NODE_ARGS?.split(' ').filter((a) => a !== '') ?? []),
      BIN,
      'peer',
      '--data-dir',
      dir,
      '--tracker',
      trackerUrl,
      '--no-shell',
      '--no-ui',
      '--log-level',
      'warn',
      ...args,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (l) => {
      if (/^peer [0-9a-f]{64} serving on/.test(l)) resolve(l);
    });
    child.once('exit', (code) => reject(new Error(`peer ${name} exited (${code}) before serving`)));
  });
  const port = Number(/serving on [^ ]*:(\d+)/.exec(line)![1]);
  const call = <T>(command: string, ...words: string[]) => callDaemon(dir, command, words) as Promise<T>;
  return { name, dir, child, port, call } satisfies BenchPeer;
}

/**
 * A tracker and peers `names` (the first owns group `group`, the others joined and accepted),
 * each started with `argsOf(name)`; all logged in.
 */
export async function startPeerSwarm(
  root: string,
  group: string,
  names: string[],
  argsOf: (name: string) => string[] = () => [],
  beforeLogin: (peers: BenchPeer[]) => Promise<void> = async () => {},
): Promise<PeerSwarm> {
  const tracker = await spawnTracker(
    join(root, 'tracker'),
    ['--scrypt-log-n', '10', '--heartbeat-interval-ms', '1000'],
    {
      echoStderr: true,
      // A tracker start is ~1.5 CPU-s: on a loaded machine it takes far longer than the default.
      startMs: 90_000,
    },
  );
  const peers: BenchPeer[] = [];
  const stop = async () => {
    await Promise.all(peers.map((p) => stopChild(p.child)));
    await tracker.stop();
  };
  try {
    // A few at a time: each start is about a CPU-second.
    for (let i = 0; i < names.length; i += 4) {
      const batch = names.slice(i, i + 4);
      peers.push(
        ...(await Promise.all(batch.map((n) => startBenchPeer(root, n, tracker.pinnedUrl, argsOf(n))))),
      );
    }
    await beforeLogin(peers);
    for (const p of peers) {
      await p.call('create_user', p.name, `${p.name}-password`);
      await p.call('login', p.name, `${p.name}-password`);
    }
    const [owner, ...members] = peers;
    await owner!.call('create_group', group);
    for (const m of members) {
      await m.call('join_group', group);
      await owner!.call('accept_request', group, m.name);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { tracker, peers, stop };
}

/** Stops one peer of a swarm (SIGTERM, SIGKILL after 10 s); the swarm's stop() skips it after. */
export function stopBenchPeer(peer: BenchPeer): Promise<void> {
  return stopChild(peer.child);
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** A file of `bytes` zeros that costs no time to write (hashing and sending it cost what any bytes do). */
export function sparseFile(path: string, bytes: number): void {
  writeFileSync(path, '');
  truncateSync(path, bytes);
}

export interface CountingRelay {
  /** Bytes passed from the target toward the clients so far. */
  toClients(): number;
  close(): Promise<void>;
}

/** Listens on listenHost:port and forwards to targetHost:port, counting what the target sends. */
export async function countingRelay(
  listenHost: string,
  targetHost: string,
  port: number,
): Promise<CountingRelay> {
  let bytes = 0;
  const sockets = new Set<import('node:net').Socket>();
  const server: Server = createServer((inbound) => {
    const outbound = connect({ host: targetHost, port });
    sockets.add(inbound).add(outbound);
    outbound.on('data', (d: Buffer) => {
      bytes += d.length;
      if (!inbound.write(d)) outbound.pause();
    });
    inbound.on('drain', () => outbound.resume());
    inbound.pipe(outbound);
    const end = () => {
      inbound.destroy();
      outbound.destroy();
      sockets.delete(inbound);
      sockets.delete(outbound);
    };
    inbound.on('error', end).on('close', end);
    outbound.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(port, listenHost, resolve));
  return {
    toClients: () => bytes,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
