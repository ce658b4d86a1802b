import { PONG_FLOOR_MS } from '../core/round-trips.js';

/**
 * Every default of the peer daemon, in one frozen place, units in the names
 * (the mirror of tracker/config.ts). startPeerDaemon() and the modules it
 * starts fall back on these when an option is not given; `coterie peer` maps
 * its flags and COTERIE_* environment variables onto the options. The
 * download engine's own tunables are DOWNLOAD_DEFAULTS (files/download/options.ts).
 */
export const PEER_DEFAULTS = Object.freeze({
  /** The tracker `coterie peer` uses without --tracker or $COTERIE_TRACKER. */
  trackerUrlDefault: 'https://127.0.0.1:7070',
  /** Where the piece server listens; port 0 takes a free one. */
  pieceHostDefault: '127.0.0.1',
  piecePortDefault: 0,
  /** The home router's port mapping lease (NAT-PMP's recommended two hours), renewed at half. */
  portMappingLeaseSec: 7_200,
  /** The control API: loopback only, port 0 takes a free one (daemon.json says which). */
  controlHostDefault: '127.0.0.1',
  controlPortDefault: 0,
  /** How long a stopping control server waits for its last answers before cutting connections. */
  controlCloseGraceMs: 500,
  /**
   * How long a stopping web UI waits for its last answers and its pages' closing handshakes
   * before cutting every connection (a stalled upload, a page that never answers the close).
   */
  uiCloseGraceMs: 500,
  /** One tracker REST call's timeout. */
  trackerCallTimeoutMs: 10_000,
  /**
   * How long a tracker call keeps retrying (across the tracker list) once a
   * tracker has answered before: long enough for a failover.
   */
  trackerRetryForMs: 20_000,
  /** Random spread of each reconnect delay over the tracker list (0.2 = ±20 %). */
  trackerBackoffJitter: 0.2,
  /**
   * The session's own heartbeat (the tracker may ask for shorter), as
   * sessionHeartbeat(5_000) gives it: a ping after 2.2 s of silence, its pong
   * waited for as the round trips say, 2.5 s at most.
   */
  sessionHeartbeatIntervalMs: 2_200,
  sessionHeartbeatTimeoutMs: 2_500,
  /**
   * The shortest wait for a pong, however fast the tracker answered before
   * (the deadline follows the measured round trips, up to the timeout above).
   */
  sessionPongFloorMs: PONG_FLOOR_MS,
  /** The WebSocket handshake with a tracker. */
  sessionConnectTimeoutMs: 5_000,
  /** peer.db waits this long for a lock another connection holds. */
  storeBusyTimeoutMs: 5_000,
  /** A download's progress is saved in peer.db at most this often while it runs. */
  downloadProgressSaveIntervalMs: 2_000,
  /** A part file's resume state (the verified pieces) is saved at most this often. */
  resumeSaveIntervalMs: 1_000,
  /** The tracker's minimum password length (api.ts Password), checked before a round trip. */
  passwordMinLength: 8,
  /** A message notice quotes this much of the body. */
  messageNoticeChars: 200,
  /** show_messages shows at most this many messages. */
  showMessagesLimit: 1_000,
  /** show_messages --unread shows this many at a time unless --limit says. */
  unreadPageSize: 50,
  /**
   * Pushed messages are acknowledged at once, then at most once per this many ms, the acks
   * of the window merged (messages/ack-window.ts): a busy group's member sends a few acks a
   * second, not one per message, and the tracker commits and receipts that many less.
   */
  deliveryAckWindowMs: 100,
  /** A storage peer re-hashes its replicas at most this fast (`--scrub-mib-s`). */
  scrubBytesPerSec: 20 * 1024 * 1024,
});

/**
 * `--tracker-heartbeat-ms H`: a tracker silent for H is left. The peer pings
 * after 0.44 H of silence and waits for the pong at most 0.5 H (less as the
 * measured round trips allow). The tracker pings no peer that pings it, so at
 * 0.44 H the session carries no more pings than it did when the peer pinged
 * every 0.5 H and the tracker every 10 s besides (27 a minute at H = 5 s,
 * against 28).
 */
export function sessionHeartbeat(ms: number): { heartbeatIntervalMs: number; heartbeatTimeoutMs: number } {
  return { heartbeatIntervalMs: Math.ceil(ms * 0.44), heartbeatTimeoutMs: Math.ceil(ms / 2) };
}
