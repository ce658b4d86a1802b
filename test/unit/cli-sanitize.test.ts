import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatResult } from '../../src/cli/format.js';
import { createProgressRenderer } from '../../src/cli/progress.js';
import { safeJson, shown, shownLines } from '../../src/cli/sanitize.js';
import type { InboxMessage } from '../../src/peer/store/index.js';

/** What a terminal acts on: C0 (but the newline ending a line), DEL, C1, bidi embeddings/overrides/isolates, U+2028/9. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding raw controls is the point
const RAW = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\u2028\u2029]/u;

/** Strings biased toward what attacks a terminal, mixed with any code point at all. */
const hostile = fc.string({
  unit: fc.oneof(
    fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
    fc.constantFrom(
      '\x1b',
      '\x07',
      '\n',
      '\r',
      '\t',
      '\x7f',
      '\x9b',
      '\x9d',
      '\u202e',
      '\u202d',
      '\u2066',
      '\u2069',
      '\u200f',
      '\u2028',
      '\x1b[2J',
      '\x1b]0;title\x07',
      '\x1b]8;;http://x\x1b\\',
      '\x1b[31m',
      '\x1bP+q\x1b\\',
      'coterie> ',
      '*12:00:00  [alice] ',
    ),
  ),
  maxLength: 40,
});

const inbox = (body: string, sender: string, i: number): InboxMessage => ({
  messageId: `${i}`.padStart(32, '0'),
  streamId: 'g:films',
  seq: i + 1,
  kind: i % 3 === 0 ? 'direct' : i % 3 === 1 ? 'group' : 'topic',
  sender,
  to: null,
  groupId: 'films',
  topic: i % 3 === 2 ? 'news' : null,
  body,
  sentAt: 1_700_000_000_000 + i,
  receivedAt: 1_700_000_000_000 + i,
  readAt: i % 2 === 0 ? null : 1,
});

describe('what the CLI prints from the network', () => {
  it('never holds a raw control or bidi override, and a body cannot start a line of its own', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(hostile, hostile), { minLength: 1, maxLength: 5 }), (pairs) => {
        const messages = pairs.map(([body, sender], i) => inbox(body, sender, i));
        const out = formatResult('show_messages', { me: 'bob', messages, unreadLeft: 3 }, ['--unread']);
        expect(out).not.toMatch(RAW);
        // Each line is a message (mark, clock), a body's continuation, or the page's footer.
        for (const line of out.split('\n'))
          expect(line).toMatch(/^([* ]\d\d:\d\d:\d\d {2}\[|[* ]\d{4}-|\s{4}\| |… )/);
        expect(out.split('\n').filter((l) => /^[* ]\d/.test(l))).toHaveLength(messages.length);

        const page = formatResult('fetch_messages', {
          groupId: 'films',
          topic: 'news',
          messages: messages.map((m) => ({ ...m, to: undefined, groupId: 'films', topic: 'news' })),
          nextSeq: 1,
          lastSeq: 9,
          firstSeq: 1,
        });
        expect(page).not.toMatch(RAW);
        expect(page.split('\n').filter((l) => l.startsWith('#'))).toHaveLength(messages.length);
      }),
      { numRuns: 300 },
    );
  });

  it('escapes names, reasons and error messages in every answer', () => {
    fc.assert(
      fc.property(hostile, hostile, (name, text) => {
        const outs = [
          formatResult('list_groups', {
            groups: [{ groupId: name, owner: text, memberCount: 1, standing: 'member', createdAt: 0 }],
          }),
          formatResult('list_members', {
            groupId: name,
            members: [{ userId: text, role: 'owner', joinedAt: 0 }],
          }),
          formatResult('list_files', {
            groupId: name,
            files: [
              {
                fileId: 'f'.repeat(64),
                name: text,
                size: 1,
                pieceSize: 1,
                pieceCount: 1,
                sharers: [name],
                seeders: 1,
                sharedAt: 0,
              },
            ],
          }),
          formatResult('show_downloads', {
            downloads: [
              {
                id: 1,
                groupId: name,
                fileName: text,
                fileId: 'f'.repeat(64),
                dest: '/tmp/x',
                size: 1,
                state: 'failed',
                doneBytes: 0,
                rateBytesPerSec: 0,
                peers: 0,
                error: text,
                startedAt: 0,
                endedAt: 0,
              },
            ],
          }),
          formatResult('send_msg', { id: null, state: 'pending', clientId: 'c', streamId: 's', to: name }),
          formatResult('no_such_formatter', { anything: text }),
          shown(text),
        ];
        for (const out of outs) expect(out).not.toMatch(RAW);
        expect(shown(text)).not.toContain('\n');
      }),
      { numRuns: 300 },
    );
  });

  it('--json keeps the true text, with what a terminal acts on written as \\u escapes', () => {
    fc.assert(
      fc.property(hostile, hostile, (body, sender) => {
        const value = { messages: [inbox(body, sender, 0)], note: body };
        const text = safeJson(value);
        expect(text).not.toMatch(RAW);
        expect(JSON.parse(text)).toEqual(value);
      }),
      { numRuns: 300 },
    );
  });

  it('shows the attack of issue 14 escaped, and other text as itself', () => {
    const body = 'hi\x1b[2J\x1b]0;title\x07\u202eevil\ncoterie> login alice -';
    const out = formatResult('show_messages', { me: 'bob', messages: [inbox(body, 'alice', 0)] });
    expect(out).toContain('hi\\x1b[2J\\x1b]0;title\\x07\\u202eevil');
    expect(out.split('\n')[1]).toBe('    | coterie> login alice -');
    expect(shown('a\x9bb\u2066c\td')).toBe('a\\u009bb\\u2066c\\td');
    const text = 'café 東京 👩‍👩‍👧 שלום\u200f';
    expect(shown(text)).toBe(text);
    expect(shownLines('one\ntwo\x1b')).toBe('one\ntwo\\x1b');
  });

  it('draws the progress bar with the file name escaped', () => {
    const stream = Object.assign(new PassThrough(), { isTTY: true, columns: 120 });
    let text = '';
    stream.on('data', (d: Buffer) => {
      text += d.toString();
    });
    const bar = createProgressRenderer(stream as unknown as NodeJS.WriteStream);
    bar.update({ kind: 'download', label: 'evil\x1b]0;pwned\x07\u202e.mkv', doneBytes: 1, totalBytes: 2 });
    bar.stop();
    expect(text).toContain('evil\\x1b]0;pwned\\x07\\u202e.mkv');
    expect(text).not.toContain('\x1b]0;pwned');
    expect(text).not.toContain('\u202e');
  });
});
