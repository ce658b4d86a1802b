import { CoterieError } from '../../src/protocol/errors.js';

/** Polls `check` every `everyMs` until it holds; throws naming `what` after `ms`. */
export async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  ms = 10_000,
  everyMs = 25,
): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}`);
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
