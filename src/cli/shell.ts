import { appendFileSync, readFileSync } from 'node:fs';
import { clearLine, createInterface, cursorTo, type Interface } from 'node:readline';
import { absolutizePaths, COMMANDS, getCommand, matchForm } from '../peer/client.js';
import type { Notice, PeerDaemon } from '../peer/index.js';
import { CoterieError } from '../protocol/errors.js';
import { formatResult } from './format.js';
import { commandHelp } from './help.js';
import { createProgressRenderer } from './progress.js';
import { shown, shownLines } from './sanitize.js';
import { splitWords } from './words.js';

export interface ShellOptions {
  daemon: PeerDaemon;
  input?: NodeJS.ReadStream;
  output?: NodeJS.WriteStream;
  /** Lines typed in earlier sessions (up arrow), one per line. */
  historyFile?: string;
}

const HISTORY_SIZE = 500;
const NAMES = [...COMMANDS.map((c) => c.name), 'help'].sort();

export function completeCommand(line: string): [string[], string] {
  const words = line.trimStart().split(/\s+/);
  if (words.length > 1) return [[], line];
  const partial = words[0] ?? '';
  const hits = NAMES.filter((n) => n.startsWith(partial));
  return [hits.length > 0 ? hits.map((h) => `${h} `) : NAMES, partial];
}

function loadHistory(file: string | undefined): string[] {
  if (file === undefined) return [];
  try {
    return readFileSync(file, 'utf8').split('\n').filter(Boolean).slice(-HISTORY_SIZE).reverse();
  } catch {
    return [];
  }
}

/**
 * The terminal as readline sees it, with a switch that keeps what is typed
 * off the screen (a password): readline echoes every key to its output.
 */
function switchableEcho(output: NodeJS.WriteStream): { stream: NodeJS.WriteStream; hide: boolean } {
  const state = { stream: output, hide: false };
  state.stream = new Proxy(output, {
    get(target, prop) {
      if (prop === 'write' && state.hide) return () => true;
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return state;
}

/** The line as history keeps it: a password typed on the line becomes '-' (asked again when rerun). */
export function historyLine(line: string): string {
  let words: string[];
  try {
    words = splitWords(line);
  } catch {
    return line; // unbalanced quotes: the command fails anyway, and names no password
  }
  const [name, ...args] = words;
  if (name === undefined || !COMMANDS.some((c) => c.name === name)) return line;
  const pw = (matchForm(getCommand(name), args) ?? []).findIndex((p) => p.kind === 'password');
  if (pw < 0 || args[pw] === '-') return line;
  return [name, ...args.map((a, i) => (i === pw ? '-' : a))].map(quoteWord).join(' ');
}

const quoteWord = (w: string) => (/^[^\s'"\\]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`);

/**
 * Prints a line above the prompt without losing what the user is typing. The
 * line is one line, escaped: a notice carries names and bodies from others,
 * and a raw one could clear the screen or draw a fake prompt.
 */
function printAbove(rl: Interface, output: NodeJS.WriteStream, text: string): void {
  clearLine(output, 0);
  cursorTo(output, 0);
  output.write(`${shown(text)}\n`);
  rl.prompt(true);
}

/**
 * The interactive shell of `coterie peer` on a terminal: the same commands
 * as the CLI, run in-process against the daemon, with history, tab
 * completion and pushed notices. Resolves when the shell closes (quit, ^D).
 */
export async function runShell(options: ShellOptions): Promise<void> {
  const { daemon } = options;
  const input = options.input ?? process.stdin;
  const output = options.output ?? process.stdout;
  const echo = switchableEcho(output);
  const rl = createInterface({
    input,
    output: echo.stream,
    prompt: 'coterie> ',
    completer: completeCommand,
    history: loadHistory(options.historyFile),
    historySize: HISTORY_SIZE,
    terminal: output.isTTY === true,
  });
  const onNotice = (n: Notice) => printAbove(rl, output, `* ${n.text}`);
  daemon.on('notice', onNotice);
  let closedFlag = false;
  const closed = new Promise<void>((resolve) =>
    rl.once('close', () => {
      closedFlag = true;
      resolve();
    }),
  );
  daemon.once('stopped', () => rl.close());

  // ^C clears a half-typed line, and on an empty line stops the peer (like quit, cleanly).
  rl.on('SIGINT', () => {
    if (rl.line.length > 0) {
      rl.write(null, { ctrl: true, name: 'u' });
      return;
    }
    output.write('\n');
    rl.close();
  });
  /** Asks for a password without showing it (on a terminal; piped input is not echoed anyway). */
  const askHidden = (q: string) =>
    new Promise<string>((resolve) => {
      output.write(q);
      echo.hide = true;
      rl.question('', (answer) => {
        echo.hide = false;
        if (rl.terminal) output.write('\n');
        resolve(answer);
      });
    });
  // A password typed on a line stays out of the history, in memory and on disk.
  rl.on('history', (history) => {
    if (history[0] !== undefined) history[0] = historyLine(history[0]);
  });

  const runLine = async (line: string): Promise<void> => {
    const words = splitWords(line);
    if (words.length === 0) return;
    const [name, ...rest] = words as [string, ...string[]];
    if (name === 'help' || name === '?') {
      output.write(`${commandHelp()}\n`);
      return;
    }
    const spec = getCommand(name);
    let args = absolutizePaths(spec, rest, process.cwd());
    const form = matchForm(spec, args) ?? [];
    const pw = form.findIndex((p) => p.kind === 'password');
    if (pw >= 0 && args[pw] === '-') {
      const typed = await askHidden('password: ');
      args = args.map((a, i) => (i === pw ? typed : a));
    }
    const bar = spec.streams === true ? createProgressRenderer(output) : undefined;
    try {
      const result = await daemon.execute(
        name,
        args,
        bar === undefined ? {} : { onProgress: (p) => bar.update(p) },
      );
      bar?.stop();
      output.write(`${shownLines(formatResult(name, result, args))}\n`);
    } finally {
      bar?.stop();
    }
  };

  // Lines run one after another, in order, even when pasted faster than commands finish.
  let queue = Promise.resolve();
  rl.on('line', (line) => {
    if (options.historyFile !== undefined && line.trim() !== '') {
      try {
        appendFileSync(options.historyFile, `${historyLine(line).replace(/\n/g, ' ')}\n`, { mode: 0o600 });
      } catch {
        // history is a convenience
      }
    }
    queue = queue.then(() =>
      runLine(line)
        .catch((err: unknown) => {
          const e = CoterieError.from(err, 'INTERNAL');
          output.write(`error: ${shown(e.message)} [${e.code}]\n`);
        })
        .finally(() => {
          if (!closedFlag) rl.prompt();
        }),
    );
  });
  output.write("type 'help' for the commands, 'quit' to stop the peer\n");
  rl.prompt();
  await closed;
  daemon.off('notice', onNotice);
}
