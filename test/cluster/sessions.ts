// Raw tracker sessions for the cluster's messaging cases: opened, welcomed and caught up,
// then read push by push.
import { afterAll } from 'vitest';
import { openSession, randomPeerId, type SessionClient } from '../helpers/tracker.js';

/**
 * For one suite: `connect` opens a session, says hello, and waits for its welcome and the end of
 * its catch-up. Every session it opened is closed after the suite.
 */
export function syncedSessions(): (url: string, token: string) => Promise<SessionClient> {
  const sessions: SessionClient[] = [];
  afterAll(async () => {
    for (const s of sessions) await s.close();
  });
  return async (url, token) => {
    const s = await openSession(url, token);
    sessions.push(s);
    s.raw({ type: 'hello', v: 1, peerId: randomPeerId(), addresses: [], seeding: [] });
    await s.next('welcome');
    await s.next('synced');
    return s;
  };
}

/** Collects pushed messages until `count` arrived (each within a second of the last). */
export async function receivePushed<T>(s: SessionClient, count: number): Promise<T[]> {
  const got: T[] = [];
  while (got.length < count) {
    const m = (await s.next('messages', 1_000)) as unknown as { items: T[] };
    got.push(...m.items);
  }
  return got;
}
