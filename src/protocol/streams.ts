import { randomBytes } from 'node:crypto';
import type { StreamKind } from './api.js';
import { isValidName } from './names.js';

/**
 * Stream ids name the three kinds of message streams: `d:<a>:<b>` for the
 * direct conversation of users a < b, `g:<group>` for a group's channel and
 * `t:<group>:<topic>` for a topic. Names never contain ':' (NAME_PATTERN),
 * so the ids parse back unambiguously. Tracker and peer both derive them.
 */
export type ParsedStream =
  | { kind: 'direct'; users: [string, string] }
  | { kind: 'group'; groupId: string }
  | { kind: 'topic'; groupId: string; topic: string };

export function directStreamId(a: string, b: string): string {
  return a < b ? `d:${a}:${b}` : `d:${b}:${a}`;
}

export function groupStreamId(groupId: string): string {
  return `g:${groupId}`;
}

export function topicStreamId(groupId: string, topic: string): string {
  return `t:${groupId}:${topic}`;
}

/** Returns undefined for anything that is not a well-formed stream id. */
export function parseStreamId(streamId: string): ParsedStream | undefined {
  const parts = streamId.split(':');
  const [kind, x, y] = parts;
  if (kind === 'd' && parts.length === 3 && isValidName(x) && isValidName(y) && x < y) {
    return { kind: 'direct', users: [x, y] };
  }
  if (kind === 'g' && parts.length === 2 && isValidName(x)) return { kind: 'group', groupId: x };
  if (kind === 't' && parts.length === 3 && isValidName(x) && isValidName(y)) {
    return { kind: 'topic', groupId: x, topic: y };
  }
  return undefined;
}

export function streamKindOf(streamId: string): StreamKind | undefined {
  return parseStreamId(streamId)?.kind;
}

/**
 * A time-ordered random id, 32 hex characters: 12 of the millisecond clock,
 * 20 random. The tracker names messages with them, and peers choose their
 * client ids with them: stored ids that grow with time land at the end of
 * their indexes instead of all over them (random keys made every commit
 * rewrite pages across the whole index).
 */
export function newTimeOrderedId(at: number = Date.now()): string {
  return at.toString(16).padStart(12, '0').slice(-12) + randomHex20();
}

// One getrandom call per 409 ids instead of one per id: the call, not the bytes, was the cost.
const POOL_BYTES = 4090;
let pool = Buffer.alloc(0);
let poolAt = 0;
function randomHex20(): string {
  if (poolAt + 10 > pool.length) {
    pool = randomBytes(POOL_BYTES);
    poolAt = 0;
  }
  poolAt += 10;
  return pool.toString('hex', poolAt - 10, poolAt);
}
