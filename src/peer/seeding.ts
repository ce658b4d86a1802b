import type { Logger } from 'pino';
import { createManifest } from '../core/index.js';
import type { Manifest } from '../protocol/manifest.js';
import type { PeerIdentity } from '../wire/index.js';
import type { PartialSource } from './download/engine.js';

/**
 * The peer's seeding side: the piece server (TLS, tickets checked with the
 * cluster's keys) over the files it shares and the downloads it runs.
 * TEMPORARY stub until src/wire/piece-server.ts and src/core/manifest.ts land.
 */
export interface Seeding {
  readonly host: string;
  readonly port: number;
  serveFile(fileId: string, manifest: Manifest, path: string): void;
  servePartial(source: PartialSource): void;
  unserve(fileId: string): void;
  stop(): Promise<void>;
}

export interface SeedingOptions {
  identity: PeerIdentity;
  host: string;
  port: number;
  /** The tracker cluster's ticket keys (JWKS), fetched when needed. */
  getKeys: () => Promise<{ keys: unknown[] }>;
  log: Logger;
}

export async function startSeeding(options: SeedingOptions): Promise<Seeding> {
  return {
    host: options.host,
    port: options.port,
    serveFile: () => {},
    servePartial: () => {},
    unserve: () => {},
    stop: async () => {},
  };
}

/** Hashes a file to share (on every core for large files), reporting progress. */
export async function hashFile(
  path: string,
  onProgress: (doneBytes: number, totalBytes: number) => void,
): Promise<Manifest> {
  return (await createManifest(path, { onProgress })).manifest;
}
