import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { splitWords } from '../../src/cli/words.js';
import { callDaemonAt } from '../../src/peer/control/client.js';
import {
  absolutizePaths,
  COMMANDS,
  getCommand,
  matchForm,
  parseArgs,
} from '../../src/peer/control/commands.js';
import { startControlServer } from '../../src/peer/control/server.js';
import { CONTROL_PATH, MAX_CONTROL_BODY_BYTES } from '../../src/protocol/control.js';
import { ERROR_CODES, isCoterieError } from '../../src/protocol/errors.js';

// Whatever a user types, or whatever reaches the daemon's control port: a parse, or a coded
// error, never another exception (which would be a crash of the shell or a 500 of the daemon).

/** Words a user might type, and words no one should. */
const word = fc.oneof(
  fc.constantFrom('alice', 'films', 'a.bin', 'news', '--wait', '--since', '--since=3', '--', '-', '--x', ''),
  fc.constantFrom('0123456789abcdef0123456789abcdef', '../../etc/passwd', 'a/b', 'x\u0000y', 'é', ' '),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.string({ minLength: 200, maxLength: 400 }),
);
const words = fc.array(word, { maxLength: 8 });
/** Lines made mostly of what the splitter treats specially: quotes, backslashes, blanks. */
const shellLine = fc.oneof(
  fc.string({ unit: fc.constantFrom('"', "'", '\\', ' ', '\t', 'a', 'é', '-'), maxLength: 60 }),
  fc.string({ unit: 'binary', maxLength: 200 }),
);
const commandName = fc.constantFrom(...COMMANDS.map((c) => c.name));

function expectCoded(err: unknown): void {
  if (!isCoterieError(err)) throw err;
  expect(ERROR_CODES).toContain(err.code);
  expect(err.message.length).toBeGreaterThan(0);
}

describe('command-line parsing, fuzzed', () => {
  it('splits any line into words or refuses it with USAGE', () => {
    fc.assert(
      fc.property(shellLine, (line) => {
        try {
          const out = splitWords(line);
          for (const w of out) expect(typeof w).toBe('string');
        } catch (err) {
          expect(isCoterieError(err, 'USAGE')).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('gives back the words it was given, once each is quoted', () => {
    const quote = (w: string) => `"${w.replace(/[\\"]/g, '\\$&')}"`;
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'binary', maxLength: 30 }), { maxLength: 8 }), (ws) => {
        expect(splitWords(ws.map(quote).join(' '))).toEqual(ws);
      }),
      { numRuns: 1000 },
    );
  });

  it("checks any words against any command's syntax: a parse or a coded error", () => {
    fc.assert(
      fc.property(commandName, words, (name, ws) => {
        const spec = getCommand(name);
        try {
          const parsed = parseArgs(spec, ws);
          // What parses parses the same again: the checks have no hidden state.
          expect(parseArgs(spec, ws)).toEqual(parsed);
        } catch (err) {
          expectCoded(err);
        }
        // The helpers the CLI runs before sending a command never throw.
        matchForm(spec, ws);
        expect(absolutizePaths(spec, ws, '/home/u')).toHaveLength(ws.length);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('the control API, fuzzed over a real socket', () => {
  function post(port: number, body: Buffer, token = 'secret'): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path: CONTROL_PATH,
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        },
      );
      // An oversize body may be refused before it is all sent.
      req.on('error', (err: NodeJS.ErrnoException) =>
        err.code === 'EPIPE' || err.code === 'ECONNRESET' ? resolve({ status: 413, text: '' }) : reject(err),
      );
      req.end(body);
    });
  }

  it('answers any body with a result or a coded error, and stays up', async () => {
    // The daemon's own parsing of what it is sent; running the commands is other tests' job.
    const server = await startControlServer({
      token: 'secret',
      execute: async (name, args) => {
        parseArgs(getCommand(name), args);
        return { name };
      },
    });
    const json = (v: unknown) => Buffer.from(JSON.stringify(v));
    const body = fc.oneof(
      fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
      fc.string({ maxLength: 200 }).map((s) => Buffer.from(s)),
      fc.jsonValue().map(json),
      fc
        .record(
          { name: fc.oneof(commandName, fc.string(), fc.integer(), fc.constant(null)), args: fc.anything() },
          { requiredKeys: [] },
        )
        .map(json),
      fc.record({ name: commandName, args: words, stream: fc.boolean() }).map(json),
      fc.constant(Buffer.alloc(MAX_CONTROL_BODY_BYTES + 1, 0x20)),
    );
    try {
      await fc.assert(
        fc.asyncProperty(body, async (b) => {
          const r = await post(server.port, b);
          expect(r.status).toBeLessThan(500);
          if (r.text === '') return; // cut off while sending an oversize body
          // A streamed answer is NDJSON: its last line is the answer.
          const answer = JSON.parse(r.text.trim().split('\n').at(-1)!) as {
            ok: boolean;
            error?: { code: string; message: string };
          };
          if (answer.ok) return;
          expect(ERROR_CODES).toContain(answer.error?.code);
          expect(answer.error?.message.length).toBeGreaterThan(0);
        }),
        { numRuns: 300 },
      );
      // Still answering, and still guarded.
      expect((await post(server.port, json({ name: 'list_groups', args: [] }))).status).toBe(200);
      expect((await post(server.port, json({ name: 'list_groups', args: [] }), 'wrong')).status).toBe(401);
    } finally {
      await server.stop();
    }
  }, 60_000);
});

describe('the CLI reading what it takes for its daemon, fuzzed', () => {
  it('turns any answer into a result or a coded error (a stale daemon.json may point at anything)', async () => {
    let answer = { status: 200, text: '' };
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(answer.status, { 'content-type': 'application/json' });
        res.end(answer.text);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const info = { control: { host: '127.0.0.1', port: (server.address() as AddressInfo).port }, token: 't' };
    const line = fc.oneof(
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc.constantFrom('null', '5', '"x"', '[]', '{}', '{"ok":false}', '{"ok":true}', '{"progress":null}'),
      fc.string({ maxLength: 60 }),
    );
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(200, 400, 500),
          fc.array(line, { minLength: 1, maxLength: 4 }),
          fc.boolean(),
          async (status, lines, streamed) => {
            answer = { status, text: lines.join('\n') };
            try {
              await callDaemonAt(info, 'list_groups', [], streamed ? { onProgress: () => {} } : {});
            } catch (err) {
              expectCoded(err);
            }
          },
        ),
        { numRuns: 200 },
      );
    } finally {
      await new Promise((r) => server.close(r));
    }
  }, 60_000);
});
