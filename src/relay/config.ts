export interface RelaySettings {
  host: string;
  port: number;
  maxCircuits: number;
  maxCircuitsPerUser: number;
  maxReservations: number;
  rateBytesPerSec: number;
  reservationTtlMs: number;
  handshakeTimeoutMs: number;
  acceptTimeoutMs: number;
}

/** Every tunable of a relay, in one frozen place, units in the names. */
export const RELAY_DEFAULTS: Readonly<RelaySettings> = Object.freeze({
  host: '0.0.0.0',
  port: 0,
  /**
   * Circuits open at once through this relay. Each costs two sockets and
   * whatever the rate lets through; 256 × the default rate is far more than
   * a tracker's uplink, so the rate, not this, is what usually binds.
   */
  maxCircuits: 256,
  /** Circuits one user's downloads hold at once: a download dials a handful of seeders. */
  maxCircuitsPerUser: 32,
  /** Peers holding a reservation at once (each is one idle socket). */
  maxReservations: 4096,
  /**
   * Bytes per second per circuit and direction. A relay is the fallback, not
   * the road: 8 MiB/s keeps one circuit from taking a tracker's uplink while
   * leaving a relayed download usable (0 lifts the limit).
   */
  rateBytesPerSec: 8 * 1024 * 1024,
  /**
   * A reservation not renewed within this long ends; peers renew every 15 s (their keepalive
   * ping), at 2/3 of it at the latest.
   */
  reservationTtlMs: 10 * 60_000,
  /** The first frame of a connection must come within this long. */
  handshakeTimeoutMs: 10_000,
  /** The reserved peer must accept a circuit within this long, or the downloader gets UNAVAILABLE. */
  acceptTimeoutMs: 10_000,
});

export type RelayLimits = Pick<
  RelaySettings,
  'maxCircuits' | 'maxCircuitsPerUser' | 'maxReservations' | 'rateBytesPerSec' | 'reservationTtlMs'
>;
