/**
 * Polls `check` every `everyMs` until it holds; throws naming `what` after `ms`.
 * The one polling helper of the tests and the benchmarks (which poll every
 * 1 ms, as their figures are times).
 */
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
  throw new Error(`timed out waiting for ${what} (${ms} ms)`);
}
