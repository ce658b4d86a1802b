import { PassThrough } from 'node:stream';
import { runShell } from '../../src/cli/shell.js';
import type { PeerDaemon } from '../../src/peer/daemon.js';

export interface PipedShell {
  /** What the user types. */
  readonly input: PassThrough;
  /** Everything the shell printed so far. */
  readonly text: string;
  /** Resolves once the shell closed (end `input`, or quit). */
  readonly done: Promise<void>;
}

/**
 * The peer's interactive shell over in-memory streams. `terminal` makes both
 * look like a TTY, so that readline echoes keys and keeps history as it does
 * for a person at a keyboard.
 */
export function pipedShell(
  daemon: PeerDaemon,
  options: { terminal?: boolean; historyFile?: string } = {},
): PipedShell {
  const input = new PassThrough();
  const output = new PassThrough();
  if (options.terminal) {
    Object.assign(input, { isTTY: true });
    Object.assign(output, { isTTY: true, columns: 80 });
  }
  let text = '';
  output.on('data', (d: Buffer) => {
    text += d.toString();
  });
  const done = runShell({
    daemon,
    input: input as unknown as NodeJS.ReadStream,
    output: output as unknown as NodeJS.WriteStream,
    ...(options.historyFile === undefined ? {} : { historyFile: options.historyFile }),
  });
  return {
    input,
    get text() {
      return text;
    },
    done,
  };
}
