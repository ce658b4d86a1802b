import { createHash } from 'node:crypto';
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
 * The message id of (sender, client id): 32 hex characters of SHA-256. A
 * retried send computes the same id, so the sender's peer knows it before
 * the tracker answers and the tracker stores the message once.
 */
export function messageIdOf(sender: string, clientId: string): string {
  return createHash('sha256').update(`${sender}\n${clientId}`).digest('hex').slice(0, 32);
}
