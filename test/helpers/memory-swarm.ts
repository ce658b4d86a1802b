// Real piece servers reached over in-memory duplex pairs (no sockets, no TLS): the layer between
// the scheduler's unit tests and real processes, fast enough for many download scenarios.
import type { SeederInfo } from '../../src/peer/files/download/index.js';
import type { Manifest } from '../../src/protocol/manifest.js';
import { signTicket } from '../../src/protocol/tickets.js';
import {
  createIdentity,
  type Dial,
  FilePieceSource,
  type PeerIdentity,
  type PieceServer,
  startPieceServer,
} from '../../src/wire/index.js';
import { duplexPair, type LinkShape } from './duplex-pair.js';
import { makeCluster } from './piece-client.js';

export interface MemorySeederSpec {
  /** The file it serves (a corrupted copy makes a corrupt seeder). */
  path: string;
  /** The link of its nth connection (from 0); undefined: it cannot be reached any more. */
  link: (nth: number) => LinkShape | undefined;
}

export interface MemorySeeder {
  info: SeederInfo;
  server: PieceServer;
  /** Connections dialled to it so far, the refused ones included. */
  dials: number;
}

export interface MemorySwarm {
  seeders: MemorySeeder[];
  /** Dials a seeder: a fresh pair shaped as its spec says, the far end served by its piece server. */
  dial: Dial;
  /** A fresh ticket for the downloader, signed by the swarm's cluster key. */
  getTicket: () => Promise<string>;
  close(): Promise<void>;
}

export async function startMemorySwarm(o: {
  manifest: Manifest;
  fileId: string;
  downloader: PeerIdentity;
  seeders: MemorySeederSpec[];
}): Promise<MemorySwarm> {
  const cluster = await makeCluster();
  const sources: FilePieceSource[] = [];
  const seeders: MemorySeeder[] = [];
  for (const spec of o.seeders) {
    // The corrupt copy is served as is: the guard would re-hash it and stop (share-guard.ts).
    const source = await FilePieceSource.open(spec.path, o.manifest, { checkChanges: false });
    sources.push(source);
    const identity = await createIdentity();
    const server = await startPieceServer({
      identity,
      sources: (id) => (id === o.fileId ? source : undefined),
      jwks: cluster.jwks,
      host: '127.0.0.1',
      plaintext: true, // its listener is unused: every connection comes through accept()
    });
    seeders.push({
      info: { peerId: identity.peerId, address: { host: 'memory', port: 0 }, score: 0.5 },
      server,
      dials: 0,
    });
  }
  const byPeer = new Map(seeders.map((s, i) => [s.info.peerId, { seeder: s, spec: o.seeders[i]! }]));
  const dial: Dial = async (target, signal) => {
    signal.throwIfAborted();
    const entry = byPeer.get(target.peerId);
    if (entry === undefined) throw new Error(`no seeder ${target.peerId} in this swarm`);
    const shape = entry.spec.link(entry.seeder.dials++);
    if (shape === undefined) throw new Error('the link is down');
    const [downloaderSide, seederSide] = duplexPair(shape);
    entry.seeder.server.accept(seederSide, o.downloader.peerId);
    return { stream: downloaderSide, peerId: target.peerId };
  };
  const getTicket = () =>
    signTicket(
      { user: 'bob', peer: o.downloader.peerId, file: o.fileId, group: 'films', ttlSeconds: 60 },
      { privateKey: cluster.privateKey, kid: 'k1' },
    );
  return {
    seeders,
    dial,
    getTicket,
    async close() {
      await Promise.all(seeders.map((s) => s.server.close()));
      await Promise.all(sources.map((s) => s.close()));
    },
  };
}

/**
 * The options of a download from this swarm that the memory-swarm cases share: its seeders,
 * tickets and dialler, and everything on the main thread and through the page cache (the links
 * are what is measured).
 */
export function swarmDownloadOptions(swarm: MemorySwarm, identity: PeerIdentity) {
  return {
    seeders: swarm.seeders.map((s) => s.info),
    getTicket: swarm.getTicket,
    identity,
    dial: swarm.dial,
    hashWorkers: 0,
    directIo: false,
    preallocate: false,
    tickMs: 10,
  };
}
