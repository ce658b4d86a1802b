import { describe, expect, it } from 'vitest';
import { formatResult } from '../../src/cli/format.js';
import { getCommand, parseArgs, usageOf } from '../../src/peer/control/commands.js';
import {
  directStreamId,
  groupStreamId,
  newTimeOrderedId,
  parseStreamId,
  topicStreamId,
} from '../../src/protocol/streams.js';
import { thrownCode } from '../helpers/wait.js';

describe('message commands', () => {
  it('takes the rest of the line as the message, dashes and all', () => {
    const a = parseArgs(getCommand('send_msg'), ['bob', 'hello', '--not-a-flag', 'there']);
    expect(a.values).toEqual({ user_id: 'bob', message: 'hello --not-a-flag there' });
    const p = parseArgs(getCommand('publish'), ['films', 'news', 'one']);
    expect(p.values).toEqual({ group_id: 'films', topic: 'news', message: 'one' });
    expect(thrownCode(() => parseArgs(getCommand('send_msg'), ['bob']))).toBe('USAGE');
    expect(thrownCode(() => parseArgs(getCommand('send_msg'), ['Bob!', 'hi']))).toBe('INVALID_NAME');
    expect(thrownCode(() => parseArgs(getCommand('send_group_msg'), ['films', '  ']))).toBe('USAGE');
    expect(usageOf(getCommand('send_msg'))).toBe('send_msg <user_id> <message…>');
  });

  it('parses valued options and flags', () => {
    const f = parseArgs(getCommand('fetch_messages'), ['films', 'news', '--from', '5', '--limit=10']);
    expect(f.options).toEqual({ from: '5', limit: '10' });
    expect(thrownCode(() => parseArgs(getCommand('fetch_messages'), ['films', 'news', '--from']))).toBe(
      'USAGE',
    );
    expect(thrownCode(() => parseArgs(getCommand('fetch_messages'), ['films', 'news', '--since', '1']))).toBe(
      'USAGE',
    );
    const s = parseArgs(getCommand('show_messages'), ['--group', 'films', '--unread']);
    expect(s.options).toEqual({ group: 'films' });
    expect(s.flags.has('unread')).toBe(true);
    expect(parseArgs(getCommand('show_messages'), ['alice']).values).toEqual({ user_id: 'alice' });
    expect(usageOf(getCommand('show_messages'))).toBe(
      'show_messages [--group G] [--limit N] [--unread] [--peek] | show_messages <user_id> [--group G] [--limit N] [--unread] [--peek]',
    );
    expect(parseArgs(getCommand('show_messages'), ['--unread', '--limit', '10']).options).toEqual({
      limit: '10',
    });
    expect(thrownCode(() => parseArgs(getCommand('message_status'), ['xyz']))).toBe('USAGE');
  });

  it('names streams both ways and makes time-ordered ids', () => {
    expect(directStreamId('bob', 'alice')).toBe('d:alice:bob');
    expect(parseStreamId('d:alice:bob')).toEqual({ kind: 'direct', users: ['alice', 'bob'] });
    expect(parseStreamId('d:bob:alice')).toBeUndefined();
    expect(parseStreamId(groupStreamId('films'))).toEqual({ kind: 'group', groupId: 'films' });
    expect(parseStreamId(topicStreamId('films', 'news'))).toEqual({
      kind: 'topic',
      groupId: 'films',
      topic: 'news',
    });
    for (const bad of ['', 'x:films', 'g:Films', 't:films', 'g:a:b', 'd:a:b:c'])
      expect(parseStreamId(bad)).toBeUndefined();
    const a = newTimeOrderedId(1000);
    const b = newTimeOrderedId(2000);
    expect(a).toMatch(/^[0-9a-f]{32}$/);
    expect(a < b).toBe(true);
    expect(new Set(Array.from({ length: 1000 }, () => newTimeOrderedId(5))).size).toBe(1000);
  });

  it('prints what was sent and what arrived', () => {
    expect(
      formatResult('send_msg', {
        id: 'a'.repeat(32),
        state: 'sent',
        streamId: 'd:alice:bob',
        seq: 3,
        to: 'bob',
        duplicate: false,
      }),
    ).toBe(`${'a'.repeat(32)}  (sent to 'bob', #3)`);
    expect(formatResult('show_messages', { me: 'bob', messages: [] })).toBe('no messages');
  });
});
