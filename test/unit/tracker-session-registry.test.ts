import { describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import type { Caller } from '../../src/tracker/services/users.js';
import { SessionRegistry } from '../../src/tracker/ws/registry.js';
import { newSession, type Session } from '../../src/tracker/ws/session.js';

// The hub's registry: sessions by id, by user and by watched file, every index
// emptied when a session closes (a tracker's users and files come and go).

/** The registry reads ids, users, hellos and watches only: the socket is never touched. */
const session = (id: string, userId: string): Session =>
  newSession(id, {} as WebSocket, { cork() {}, uncork() {}, write: () => true }, {
    userId,
    tokenHash: `t-${id}`,
  } as Caller);
const greet = (s: Session) => {
  s.info = { sessionId: s.id, userId: s.caller.userId, peerId: 'p'.repeat(64), addresses: [] };
};

describe('tracker session registry', () => {
  it('finds sessions by id and by user, greeted ones apart', () => {
    const r = new SessionRegistry();
    const a1 = session('a1', 'alice');
    const a2 = session('a2', 'alice');
    const b1 = session('b1', 'bob');
    for (const s of [a1, a2, b1]) r.add(s);
    greet(a2);
    expect(r.size).toBe(3);
    expect(r.get('a1')).toBe(a1);
    expect([...r.ofUser('alice')]).toEqual([a1, a2]);
    expect([...r.greetedOf('alice')]).toEqual([a2]);
    expect([...r.greetedOf('carol')]).toEqual([]);
    expect(r.hasUser('bob')).toBe(true);
    expect([...r.all()]).toEqual([a1, a2, b1]);
  });

  it('keeps watchers per file, and forgets a removed session everywhere', () => {
    const r = new SessionRegistry();
    const a = session('a', 'alice');
    const b = session('b', 'bob');
    r.add(a);
    r.add(b);
    r.watch(a, 'f1');
    r.watch(a, 'f2');
    r.watch(b, 'f1');
    expect([...r.watchersOf('f1')]).toEqual([a, b]);
    r.unwatch(b, 'f1');
    expect([...r.watchersOf('f1')]).toEqual([a]);
    expect(b.watching?.size).toBe(0);
    r.remove(a);
    expect(r.get('a')).toBeUndefined();
    expect(r.hasUser('alice')).toBe(false);
    expect(r.watchersOf('f1').size).toBe(0);
    expect(r.watchersOf('f2').size).toBe(0);
    expect(r.size).toBe(1);
  });
});
