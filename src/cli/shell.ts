import { appendFileSync, readFileSync } from 'node:fs';
import { clearLine, createInterface, cursorTo, type Interface } from 'node:readline';
import { absolutizePaths, COMMANDS, getCommand, matchForm } from '../peer/client.js';
import type { Notice, PeerDaemon } from '../peer/index.js';
import { CoterieError } from '../protocol/errors.js';
import { formatResult } from './format.js';
import { commandHelp } from './help.js';
import { createProgressRenderer } from './progress.js';
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

/** Prints a line above the prompt without losing what the user is typing. */
function printAbove(rl: Interface, output: NodeJS.WriteStream, text: string): void {
  clearLine(output, 0);
  cursorTo(output, 0);
  output.write(`${text}\n`);
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
  const rl = createInterface({
    input,
    output,
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
  const ask = (q: string) => new Promise<string>((resolve) => rl.question(q, resolve));

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
      const typed = await ask('password: ');
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
      output.write(`${formatResult(name, result, args)}\n`);
    } finally {
      bar?.stop();
    }
  };

  // Lines run one after another, in order, even when pasted faster than commands finish.
  let queue = Promise.resolve();
  rl.on('line', (line) => {
    if (options.historyFile !== undefined && line.trim() !== '') {
      try {
        appendFileSync(options.historyFile, `${line.replace(/\n/g, ' ')}\n`, { mode: 0o600 });
      } catch {
        // history is a convenience
      }
    }
    queue = queue.then(() =>
      runLine(line)
        .catch((err: unknown) => {
          const e = err instanceof CoterieError ? err : new CoterieError('INTERNAL', String(err));
          output.write(`error: ${e.message} [${e.code}]\n`);
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
