/**
 * FramedConnection's options and the types it shares with its callers (connection.ts).
 */
import type { CoterieError } from '../protocol/errors.js';
import { type Clock, realClock } from './clock.js';
import { MAX_FRAME_LENGTH } from './frames.js';
import type { PlacedReads } from './placed-reads.js';
import type { LinkThrottle } from './throttle.js';

export interface FramedConnectionOptions {
  /** Largest frame accepted from the peer (see frames.ts); raise it after the handshake. */
  maxFrameLength?: number;
  /** Send a keepalive when nothing was sent for this long; 0 disables. */
  keepaliveIntervalMs?: number;
  /** Close with PROTOCOL_ERROR when nothing was received for this long; 0 disables. */
  idleTimeoutMs?: number;
  /** How long close() waits for buffered frames to flush before destroying the stream. */
  closeTimeoutMs?: number;
  /**
   * Frames queued for an async iterator before reading from the stream
   * pauses: bounds memory when the consumer is slower than the peer.
   */
  maxQueuedFrames?: number;
  /** Where keepalive, idle and close timings get their time (tests pass a fake one). */
  clock?: Clock;
}

export const CONNECTION_DEFAULTS = Object.freeze({
  maxFrameLength: MAX_FRAME_LENGTH,
  // A NAT or firewall forgets an idle TCP flow after a minute or more; 15 s stays well inside.
  keepaliveIntervalMs: 15_000,
  // Four missed keepalives: the peer is gone even if TCP has not noticed.
  idleTimeoutMs: 60_000,
  closeTimeoutMs: 2_000,
  maxQueuedFrames: 64,
  clock: realClock,
} satisfies Required<FramedConnectionOptions>);

export interface CloseInfo {
  /** True when the peer ended or reset the stream first. */
  remote: boolean;
  /**
   * Why: the failure (protocol error, idle timeout, transport error) or the
   * code given to close(); null for a plain end.
   */
  error: CoterieError | null;
}

/** How received bytes reach the decoder's buffers; both optional. */
export interface FramedConnectionIo {
  /**
   * Supplies the buffer of each frame that is not decoded in place (see
   * FrameDecoder). The downloader passes pooled, page-aligned piece slots.
   */
  allocatePayload?: (length: number) => Buffer;
  /** Takes back a buffer from allocatePayload whose frame the close cut off (pooled buffers are not lost). */
  freePayload?: (buffer: Buffer) => void;
  /**
   * The `onread` the stream was created with (see placed-reads.ts): the
   * socket then writes straight into the decoder's buffers and emits no
   * 'data'. Without it, 'data' chunks are decoded (and copied) as usual.
   */
  reads?: PlacedReads;
  /** The bandwidth limits this connection's reads are held to (a downloader's: see bandwidth.ts). */
  throttle?: LinkThrottle | undefined;
}
