// What bench/messaging.ts and its member processes (bench/_fanout-members.ts) say over IPC.

export type MembersRequest =
  | { type: 'connect'; base: string; members: { name: string; token: string }[] }
  | { type: 'report' }
  | { type: 'close' };

export type MembersReply =
  | { type: 'connected' }
  | { type: 'progress'; deliveries: number }
  /** Per delivery (a first copy at a member): the message's index (`g<size>-<index>`) and its arrival, ms. */
  | { type: 'report'; index: Int32Array; at: Float64Array; ackFrames: number };

/**
 * Add to performance.now() for ms on the monotonic clock every process shares
 * (performance.now() counts from each process's own start).
 */
export const sharedClockOffset = () => Number(process.hrtime.bigint()) / 1e6 - performance.now();
