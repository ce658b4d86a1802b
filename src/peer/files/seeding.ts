import type { Duplex } from 'node:stream';
import type { JSONWebKeySet } from 'jose';
import type { Logger } from 'pino';
import { createManifest, createTreeManifest } from '../../core/index.js';
import type { Manifest } from '../../protocol/manifest.js';
import {
  type Bandwidth,
  FilePieceSource,
  type PartialPieceSource,
  type PeerIdentity,
  type PieceServer,
  type PieceServerStats,
  type PieceSource,
  type ReportVerdict,
  startPieceServer,
  type TicketRevocation,
} from '../../wire/index.js';
import type { StoredManifest } from '../store/index.js';
import { wholeTreePages } from './tree-pages.js';
import { TreePieceSource } from './tree-source.js';

/** What is served from this peer's own shares: a file, or a folder (a tree manifest). */
type ServedSource = PieceSource & { close(): Promise<void> };

/**
 * The peer's seeding side: the piece server (TLS, tickets checked offline
 * with the cluster's keys) over the files it shares, and over the verified
 * pieces of the downloads it runs.
 */
/** What serving a shared file tells its owner. */
export interface ServeHooks {
  /** The file changed since it was shared (size, mtime, or a failed self-check): it is no longer served. */
  onChanged?(reason: string): void;
  /** A downloader reported a piece corrupt, and what re-checking the file found. */
  onReport?(piece: number, verdict: ReportVerdict): void;
}

export interface Seeding {
  readonly port: number;
  /**
   * Serves a shared file, watching it for changes since it was hashed (see wire/share-guard.ts).
   * A folder's manifest is best given as peer.db keeps it (StoredManifest): it is then served
   * from its pages, a few held at a time, not from the whole manifest (tree-source.ts).
   */
  serveFile(
    fileId: string,
    manifest: Manifest | StoredManifest,
    path: string,
    hooks?: ServeHooks,
  ): Promise<void>;
  /** Serves the verified pieces of a download in progress (until serveFile or unserve). */
  servePartial(fileId: string, source: PartialPieceSource): void;
  unserve(fileId: string): void;
  /** A file deleted from a group: the connections downloading it for that group end now. */
  dropFile(fileId: string, groupId: string): void;
  /** The cluster keys changed or became known (after a tracker connection). */
  setKeys(jwks: JSONWebKeySet): void;
  /** The tracker revoked a user's tickets in a group: drop their connections, refuse those tickets. */
  revokeTickets(revocation: TicketRevocation): void;
  /** Serves a connection that came another way than the listener (a relay circuit), from `peerId`. */
  accept(stream: Duplex, peerId: string): void;
  /** The piece server's totals (bytes sent, connections open now): the peer's metrics. */
  stats(): PieceServerStats;
  stop(): Promise<void>;
}

export interface SeedingOptions {
  identity: PeerIdentity;
  host: string;
  port: number;
  /** The tracker cluster's ticket keys (JWKS); may fail while no tracker answers. */
  getKeys: () => Promise<JSONWebKeySet>;
  /** The daemon's bandwidth limits: each connection's uploads are held to them at the socket. */
  bandwidth?: Bandwidth;
  log: Logger;
}

/** Hashes a file to share (on every core for large files), reporting progress. */
export async function hashFile(
  path: string,
  onProgress: (doneBytes: number, totalBytes: number) => void,
): Promise<Manifest> {
  return (await createManifest(path, { onProgress })).manifest;
}

/** Hashes a folder to share as one tree (its files on every core), reporting progress. */
export async function hashFolder(
  path: string,
  onProgress: (doneBytes: number, totalBytes: number) => void,
): Promise<Manifest> {
  return (await createTreeManifest(path, { onProgress })).manifest;
}

const isStored = (m: Manifest | StoredManifest): m is StoredManifest => 'whole' in m;

export async function startSeeding(options: SeedingOptions): Promise<Seeding> {
  const { log } = options;
  const files = new Map<string, ServedSource>();
  const partials = new Map<string, PartialPieceSource>();
  /** The file is served from `source` now: a download of it serving the swarm hands its connections over. */
  const handOverPartial = (fileId: string, source: PieceSource | null): void => {
    partials.get(fileId)?.handOver(source);
    partials.delete(fileId);
  };
  let jwks: JSONWebKeySet = { keys: [] };
  try {
    jwks = await options.getKeys();
  } catch (err) {
    // No tracker yet: the server fetches the keys on the first ticket it cannot check.
    log.warn({ err: (err as Error).message }, 'cluster keys not available yet');
  }
  const server: PieceServer = await startPieceServer({
    identity: options.identity,
    host: options.host,
    port: options.port,
    jwks,
    refreshJwks: options.getKeys,
    sources: (fileId) => files.get(fileId) ?? partials.get(fileId),
    logger: log,
    ...(options.bandwidth === undefined ? {} : { bandwidth: options.bandwidth }),
  });
  return {
    port: server.port,
    async serveFile(fileId, manifest, path, hooks = {}) {
      const old = files.get(fileId);
      const stored = isStored(manifest);
      // A folder is served from its pages (held whole only when given whole, as tests do).
      const pages = stored
        ? manifest.folder
          ? manifest
          : undefined
        : manifest.files !== undefined
          ? wholeTreePages(manifest)
          : undefined;
      if (pages !== undefined) {
        // A folder: its files are checked as they are opened (tree-source.ts), not watched.
        const tree = new TreePieceSource(path, pages);
        files.set(fileId, tree);
        await old?.close();
        handOverPartial(fileId, tree);
        return;
      }
      const whole = stored ? manifest.whole() : manifest;
      const source = await FilePieceSource.open(path, whole, { checkChanges: true });
      source.guard?.on('changed', (reason) => {
        // Stop at once, whoever the owner is: new connections get NOT_SHARING, open ones end.
        if (files.get(fileId) === source) files.delete(fileId);
        void source.close();
        hooks.onChanged?.(reason);
      });
      source.guard?.on('report', (r) => hooks.onReport?.(r.piece, r.verdict));
      files.set(fileId, source);
      await old?.close();
      handOverPartial(fileId, source);
    },
    servePartial(fileId, source) {
      if (!files.has(fileId)) partials.set(fileId, source);
    },
    unserve(fileId) {
      const f = files.get(fileId);
      files.delete(fileId);
      void f?.close();
      handOverPartial(fileId, null);
    },
    dropFile(fileId, groupId) {
      const dropped = server.dropFile(fileId, groupId);
      if (dropped > 0) log.info({ fileId, groupId, dropped }, 'connections of a deleted file closed');
    },
    setKeys: (keys) => server.setJwks(keys),
    accept: (stream, peerId) => server.accept(stream, peerId),
    stats: () => server.stats(),
    revokeTickets(revocation) {
      const dropped = server.revokeTickets(revocation);
      log.info({ ...revocation, dropped }, 'tickets revoked');
    },
    async stop() {
      await server.close();
      for (const f of files.values()) await f.close().catch(() => {});
      files.clear();
      partials.clear();
    },
  };
}
