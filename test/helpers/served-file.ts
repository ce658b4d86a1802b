// One random file behind real piece servers, for the tests that speak to a seeder frame by frame:
// the file and its manifest, the seeder's and the downloaders' identities, a cluster's ticket key
// (and a forger's), the servers started and the connections opened, all closed after each test.
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CryptoKey, JSONWebKeySet } from 'jose';
import { afterAll, afterEach, beforeAll } from 'vitest';
import type { Bitfield } from '../../src/core/bitfield.js';
import { createManifest } from '../../src/core/manifest.js';
import type { Manifest } from '../../src/protocol/manifest.js';
import { signTicket } from '../../src/protocol/tickets.js';
import {
  createIdentity,
  FilePieceSource,
  type FramedConnection,
  type PeerIdentity,
  type PieceServer,
  type PieceServerOptions,
  type PieceSource,
  startPieceServer,
} from '../../src/wire/index.js';
import { accepted, helloSeeder, makeCluster, type PieceClient } from './piece-client.js';
import { type TempDir, tempDir } from './temp-dir.js';

/** A file's or a folder's pieces, closed after the test. */
type ClosableSource = PieceSource & { close(): Promise<void> };
type Keys = { privateKey: CryptoKey; jwks: JSONWebKeySet };

export interface ServedFile {
  dir: string;
  path: string;
  data: Buffer;
  manifest: Manifest;
  fileId: string;
  seeder: PeerIdentity;
  /** The downloader the tickets name by default. */
  client: PeerIdentity;
  /** A peer no ticket names. */
  stranger: PeerIdentity;
  cluster: Keys;
  /** Keys the servers do not trust, published under the same kid. */
  forger: Keys;
}

export interface TicketClaims {
  user?: string;
  peer?: string;
  file?: string;
  group?: string;
  ttlSeconds?: number;
  nowSeconds?: number;
}

/**
 * Registers the file's hooks (made in beforeAll, servers and `conns` closed after each test,
 * the directory removed after all) and returns the file, `serve` and `ticket`; the file's
 * fields are there once the beforeAll ran.
 */
export function servedFile(prefix: string, bytes: number) {
  const file = {} as ServedFile;
  let scratch: TempDir;
  const servers: PieceServer[] = [];
  const sources: ClosableSource[] = [];
  const conns: FramedConnection[] = [];

  beforeAll(async () => {
    scratch = tempDir(prefix);
    file.dir = scratch.path;
    file.path = join(file.dir, 'file.bin');
    file.data = randomBytes(bytes);
    await writeFile(file.path, file.data);
    ({ manifest: file.manifest, fileId: file.fileId } = await createManifest(file.path));
    [file.seeder, file.client, file.stranger, file.cluster, file.forger] = await Promise.all([
      createIdentity(),
      createIdentity(),
      createIdentity(),
      makeCluster(),
      makeCluster(),
    ]);
  });

  afterEach(async () => {
    for (const c of conns.splice(0)) c.destroy();
    await Promise.all(servers.splice(0).map((s) => s.close()));
    await Promise.all(sources.splice(0).map((s) => s.close()));
  });

  afterAll(() => scratch?.remove());

  /** A piece server on loopback seeding `source` (closed after the test) under its manifest's id. */
  async function serveSource(
    source: ClosableSource,
    fileId: string,
    options: Partial<PieceServerOptions> = {},
  ) {
    sources.push(source);
    const server = await startPieceServer({
      identity: file.seeder,
      sources: (id) => (id === fileId ? source : undefined),
      jwks: file.cluster.jwks,
      host: '127.0.0.1',
      ...options,
    });
    servers.push(server);
    return server;
  }

  /** A piece server seeding the file (all of it, or what `bitfield` says). */
  async function serve(options: Partial<PieceServerOptions> = {}, bitfield?: Bitfield) {
    const source = await FilePieceSource.open(
      file.path,
      file.manifest,
      bitfield === undefined ? {} : { bitfield },
    );
    return { server: await serveSource(source, file.fileId, options), source };
  }

  /** A ticket for bob in 'films' to fetch the file as the client, for a minute, unless `over` says. */
  function ticket(over: TicketClaims = {}, key = file.cluster) {
    return signTicket(
      {
        user: over.user ?? 'bob',
        peer: over.peer ?? file.client.peerId,
        file: over.file ?? file.fileId,
        group: over.group ?? 'films',
        ttlSeconds: over.ttlSeconds ?? 60,
        ...(over.nowSeconds === undefined ? {} : { nowSeconds: over.nowSeconds }),
      },
      { privateKey: key.privateKey, kid: 'k1' },
    );
  }

  /** A connection to `port` as `who` for `fileId`, once the seeder accepted it (closed after the test). */
  async function connect(port: number, fileId: string, who: PeerIdentity): Promise<PieceClient> {
    const c = await helloSeeder({
      port,
      identity: who,
      seederPeerId: file.seeder.peerId,
      fileId,
      ticket: await ticket({ peer: who.peerId, file: fileId }),
    });
    conns.push(c.conn);
    return accepted(c);
  }

  return { file, serve, serveSource, ticket, conns, connect };
}
