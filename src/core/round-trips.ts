/**
 * The tracker session's round-trip time, smoothed as TCP smooths it (RFC 6298:
 * SRTT and RTTVAR, gains 1/8 and 1/4), and the deadline a pong gets from it.
 *
 * A fixed timeout must cover the slowest tracker anyone runs, so on a tracker a
 * millisecond away it waits seconds for an answer that will never come. The
 * deadline SRTT + 4 RTTVAR follows what this tracker actually takes: a tracker
 * whose answers grow slow or uneven (its event loop busy, a loaded machine)
 * widens its own deadline, sample by sample, before a late pong is taken for
 * death. `floorMs` keeps a pause of the tracker that no sample has shown yet
 * (a garbage collection, a synchronous transaction) from being taken for death;
 * the caller's ceiling (the configured timeout) is the longest any answer is
 * waited for.
 */
export interface RoundTripOptions {
  floorMs: number;
}

export class RoundTrips {
  private srtt: number | undefined;
  private rttvar = 0;

  constructor(private readonly options: RoundTripOptions) {}

  /** One measured round trip (a ping's pong, or the connection's handshake as the first). */
  sample(ms: number): void {
    const r = Math.max(0, ms);
    if (this.srtt === undefined) {
      this.srtt = r;
      this.rttvar = r / 2;
      return;
    }
    this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - r);
    this.srtt = 0.875 * this.srtt + 0.125 * r;
  }

  /** The smoothed round trip, once a sample came. */
  get smoothedMs(): number | undefined {
    return this.srtt;
  }

  /** How long a ping's answer is waited for, at most `ceilingMs` (all of it until a sample came). */
  deadlineMs(ceilingMs: number): number {
    if (this.srtt === undefined) return ceilingMs;
    return Math.min(ceilingMs, Math.max(this.options.floorMs, Math.ceil(this.srtt + 4 * this.rttvar)));
  }
}

/**
 * The shortest wait for a pong, however fast the round trips measured: a pause of the other
 * side that no sample has shown yet (a garbage collection, a synchronous transaction, a busy
 * event loop) must not be taken for death. The tracker session's pongs and the wire's path
 * keepalive (wire/path-keepalive.ts) both keep to it.
 */
export const PONG_FLOOR_MS = 400;
