// The one polling helper, shared with bench/ (which may not import from test/).
import { until } from '../../bench/lib/wait.js';
import { CoterieError } from '../../src/protocol/errors.js';

export { until };

/**
 * until() for a value: polls `check` until it returns something other than
 * undefined (a throw counts as not yet) and returns it; the last error in the timeout's message.
 */
export async function eventually<T>(check: () => Promise<T | undefined>, ms = 5_000): Promise<T> {
  let value: T | undefined;
  let last: unknown;
  try {
    await until(
      'a condition',
      async () => {
        try {
          value = await check();
          last = undefined;
          return value !== undefined;
        } catch (err) {
          last = err;
          return false;
        }
      },
      ms,
      50,
    );
  } catch (err) {
    throw last === undefined ? err : new Error(`${(err as Error).message}: ${String(last)}`);
  }
  return value as T;
}

/** The error code `p` rejects with ('OK' when it resolves): for asserting refusals in one line. */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (err) {
    return err instanceof CoterieError ? err.code : ((err as { code?: string }).code ?? String(err));
  }
}

/** The error code `fn` throws (undefined when it returns): the synchronous twin of codeOf. */
export function thrownCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof CoterieError ? err.code : 'NOT_A_CODED_ERROR';
  }
  return undefined;
}

/** `p`, or an error naming `what` once `ms` have passed without it settling (a call that hangs). */
export async function within<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  p.catch(() => undefined); // settling after the deadline is nobody's error
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}
