import type { TransferTotals } from './files/index.js';

export interface PeerMetricSources {
  transfers: () => TransferTotals;
  /** The piece server's totals (bytes sent, connections open now); undefined before it started. */
  uploads: () => { bytesSent: number; connections: number } | undefined;
}

export interface PeerMetrics {
  /** The Prometheus text and its content type. */
  scrape(): Promise<{ contentType: string; text: string }>;
}

/**
 * The peer's /metrics (on its control port): transfer counters and the
 * process's default metrics. prom-client is loaded at the first scrape, so a
 * peer nobody scrapes pays nothing for it; the counters themselves are plain
 * numbers kept by the files service and the piece server.
 */
export function createPeerMetrics(sources: PeerMetricSources): PeerMetrics {
  let registry: Promise<import('prom-client').Registry> | undefined;
  const build = async () => {
    const { Counter, Gauge, Registry, collectDefaultMetrics } = await import('prom-client');
    const r = new Registry();
    collectDefaultMetrics({ register: r });
    const counter = (name: string, help: string, read: () => number) =>
      new Counter({
        name,
        help,
        registers: [r],
        collect() {
          this.reset();
          this.inc(read());
        },
      });
    counter(
      'coterie_peer_uploaded_bytes_total',
      'bytes of pieces this peer served',
      () => sources.uploads()?.bytesSent ?? 0,
    );
    counter(
      'coterie_peer_downloaded_bytes_total',
      'bytes of pieces this peer downloaded and verified',
      () => sources.transfers().bytesDownloaded,
    );
    counter(
      'coterie_peer_pieces_verified_total',
      'pieces downloaded that passed their hash',
      () => sources.transfers().piecesVerified,
    );
    counter(
      'coterie_peer_pieces_failed_total',
      'pieces downloaded that failed their hash',
      () => sources.transfers().piecesFailed,
    );
    new Gauge({
      name: 'coterie_peer_connections',
      help: 'peer connections open now: in (downloaders of this peer), out (seeders of its downloads)',
      labelNames: ['direction'] as const,
      registers: [r],
      collect() {
        this.set({ direction: 'in' }, sources.uploads()?.connections ?? 0);
        this.set({ direction: 'out' }, sources.transfers().seederConnections);
      },
    });
    return r;
  };
  return {
    async scrape() {
      registry ??= build();
      const r = await registry;
      return { contentType: r.contentType, text: await r.metrics() };
    },
  };
}
