import { integerFlag } from './flags.js';

/** How long a graceful shutdown may take by default before the process exits anyway. */
export const DEFAULT_SHUTDOWN_TIMEOUT_SECONDS = 10;

export interface ShutdownGuard {
  /**
   * A stop was asked (a signal, `quit`): true the first time, when the caller starts its
   * graceful stop and the time limit starts; a second signal exits at once.
   */
  requested(why: string): boolean;
  /** The graceful stop finished: the time limit no longer applies. */
  finished(): void;
}

/** `--shutdown-timeout <seconds>`: 1 … 3600, default 10. */
export function shutdownTimeoutSeconds(value: string | undefined): number {
  return integerFlag(value, '--shutdown-timeout', 1, 3600) ?? DEFAULT_SHUTDOWN_TIMEOUT_SECONDS;
}

/**
 * A graceful shutdown with a time limit, and a second signal forcing it: a stuck client, a
 * store that stopped answering or a hung download must not keep a service from stopping (as
 * systemd, an operator's Ctrl-C twice, or a supervisor's second SIGTERM expect).
 */
export function guardShutdown(options: {
  /** `coterie tracker`, `coterie peer`: the prefix of what it prints on stderr. */
  name: string;
  timeoutSeconds: number;
  /** Called before a forced exit (flush logs). */
  beforeExit?: (reason: string) => void;
  exit?: (code: number) => void;
}): ShutdownGuard {
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let timer: NodeJS.Timeout | undefined;
  let first: string | undefined;
  const force = (reason: string) => {
    process.stderr.write(`${options.name}: ${reason}: exiting without finishing the shutdown\n`);
    options.beforeExit?.(reason);
    exit(1);
  };
  return {
    requested(why) {
      if (first !== undefined) {
        force(`${why} during the shutdown (after ${first})`);
        return false;
      }
      first = why;
      timer = setTimeout(
        () => force(`the shutdown took longer than ${options.timeoutSeconds} s (--shutdown-timeout)`),
        options.timeoutSeconds * 1000,
      );
      // A shutdown that finishes lets the process end without waiting for the limit.
      timer.unref();
      return true;
    },
    finished() {
      clearTimeout(timer);
    },
  };
}
