import { absolutizePaths, callDaemon, getCommand, matchForm, parseArgs } from '../peer/client.js';
import { CoterieError } from '../protocol/errors.js';
import { formatResult } from './format.js';
import { followMessages, LIVE, type LiveCommand, watchDownloads } from './live.js';
import { createProgressRenderer } from './progress.js';
import { safeJson, shown, shownLines } from './sanitize.js';

export interface ClientOptions {
  dataDir: string;
  json: boolean;
  stdout?: NodeJS.WriteStream;
  stderr?: NodeJS.WriteStream;
  stdin?: NodeJS.ReadStream;
  cwd?: string;
  /** `--follow` / `--watch`: keep printing until Ctrl-C (./live.ts). */
  live?: boolean;
}

/** On a terminal: prompts on stderr and reads one line without echoing it. */
function readHiddenLine(stdin: NodeJS.ReadStream, stderr: NodeJS.WriteStream): Promise<string> {
  return new Promise((resolve, reject) => {
    stderr.write('password: ');
    let line = '';
    stdin.setRawMode(true);
    stdin.resume();
    stdin.setEncoding('utf8');
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      stderr.write('\n');
      if (err !== undefined) reject(err);
      else resolve(line);
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return done();
        if (ch === '\u0003') return done(new CoterieError('USAGE', 'cancelled'));
        if (ch === '\u007f' || ch === '\b') line = line.slice(0, -1);
        else line += ch;
      }
    };
    stdin.on('data', onData);
  });
}

async function readStdinLine(stdin: NodeJS.ReadStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text.split(/\r?\n/)[0] ?? '';
}

/** A live mode until Ctrl-C (or the daemon's error); Ctrl-C is a success. */
async function runLive(
  name: LiveCommand,
  words: string[],
  options: ClientOptions & { stdout: NodeJS.WriteStream },
): Promise<number> {
  const stop = new AbortController();
  const onSigint = () => stop.abort();
  process.once('SIGINT', onSigint);
  try {
    const o = { dataDir: options.dataDir, json: options.json, stdout: options.stdout, signal: stop.signal };
    await (name === 'show_messages' ? followMessages(words, o) : watchDownloads(words, o));
    return 0;
  } catch (err) {
    if (stop.signal.aborted) return 0;
    throw err;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

/**
 * `coterie <command> [args…]`: checks the words locally (USAGE errors need
 * no daemon), resolves paths against the caller's directory, reads a '-'
 * password from stdin, sends the command and prints the answer.
 * Returns the exit code.
 */
export async function runClientCommand(
  name: string,
  words: string[],
  options: ClientOptions,
): Promise<number> {
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  try {
    const spec = getCommand(name);
    let args = absolutizePaths(spec, words, options.cwd ?? process.cwd());
    parseArgs(spec, args);
    const form = matchForm(spec, args) ?? [];
    const pwIndex = form.findIndex((p) => p.kind === 'password');
    if (pwIndex >= 0 && args[pwIndex] === '-') {
      const stdin = options.stdin ?? process.stdin;
      const pw = stdin.isTTY ? await readHiddenLine(stdin, stderr) : await readStdinLine(stdin);
      args = args.map((a, i) => (i === pwIndex ? pw : a));
      parseArgs(spec, args);
    }
    if (options.live === true && spec.name in LIVE) {
      return await runLive(spec.name as LiveCommand, args, { ...options, stdout });
    }
    const bar = spec.streams === true && !options.json ? createProgressRenderer(stderr) : undefined;
    let result: unknown;
    try {
      result = await callDaemon(
        options.dataDir,
        name,
        args,
        bar === undefined ? {} : { onProgress: (p) => bar.update(p) },
      );
    } finally {
      bar?.stop();
    }
    stdout.write(
      options.json ? `${safeJson(result)}\n` : `${shownLines(formatResult(name, result, args))}\n`,
    );
    return 0;
  } catch (err) {
    const e = CoterieError.from(err, 'INTERNAL');
    // An error's message may quote what a tracker or another user sent: shown escaped, on one line.
    if (options.json) stderr.write(`${safeJson(e.toJSON())}\n`);
    else stderr.write(`coterie: ${shown(e.message.replace(/\s*\n\s*/g, ' '))} [${e.code}]\n`);
    return e.code === 'USAGE' || e.code === 'UNKNOWN_COMMAND' ? 2 : 1;
  }
}
