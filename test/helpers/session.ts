import { onTestFinished } from 'vitest';
import { type OpenSessionOptions, SessionClient } from '../../bench/lib/session-client.js';

export { SessionClient } from '../../bench/lib/session-client.js';

/**
 * SessionClient.open (upgrade, say nothing, queue every frame for next());
 * inside a test the session is closed when the test finishes.
 */
export async function openSession(
  base: string,
  token: string | undefined,
  options: OpenSessionOptions = {},
): Promise<SessionClient> {
  const session = await SessionClient.open(base, token, options);
  try {
    onTestFinished(() => session.close());
  } catch {
    // Not inside a test: the caller closes it.
  }
  return session;
}
