import { onTestFinished } from 'vitest';
import { randomPeerId } from '../../bench/lib/manifests.js';
import { type OpenSessionOptions, SessionClient } from '../../bench/lib/session-client.js';
import type { TrackerMessage } from '../../src/protocol/session.js';

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

/**
 * Says a peer's hello on a session opened with openSession (a fresh peer id, no addresses and
 * nothing seeded unless given) and waits for the welcome, which it returns.
 */
export async function greet(
  session: SessionClient,
  hello: { peerId?: string; addresses?: string[]; seeding?: string[] } = {},
): Promise<TrackerMessage> {
  session.raw({
    type: 'hello',
    v: 1,
    peerId: hello.peerId ?? randomPeerId(),
    addresses: hello.addresses ?? [],
    seeding: hello.seeding ?? [],
  });
  return session.next('welcome');
}
