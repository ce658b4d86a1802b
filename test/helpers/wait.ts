import { CoterieError } from '../../src/protocol/errors.js';

// The one polling helper, shared with bench/ (which may not import from test/).
export { until } from '../../bench/lib/wait.js';

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
