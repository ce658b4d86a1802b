/**
 * Polls `check` every `everyMs` until it holds; throws naming `what` after `ms`.
 * The one polling helper of the tests and the benchmarks (which poll every
 * 1 ms, as their figures are times). A check that hangs (a call that never
 * answers) fails at the deadline too, naming `what`, rather than holding the
 * caller until its test times out with no word of what it waited for.
 */
export async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  ms = 10_000,
  everyMs = 25,
): Promise<void> {
  const end = Date.now() + ms;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), ms);
  });
  try {
    while (Date.now() < end) {
      const checked = Promise.resolve().then(check);
      checked.catch(() => undefined); // a check that fails after the deadline is nobody's error
      const held = await Promise.race([checked, deadline]);
      if (held === 'late') {
        throw new Error(`timed out waiting for ${what} (${ms} ms): the last check did not answer`);
      }
      if (held) return;
      await new Promise((r) => setTimeout(r, everyMs));
    }
  } finally {
    clearTimeout(timer);
  }
  throw new Error(`timed out waiting for ${what} (${ms} ms)`);
}
