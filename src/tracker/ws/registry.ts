import type { Session } from './session.js';

/** Sets in a map, the key dropped with its last member (a tracker's users come and go). */
class SetMap<K, V> {
  private readonly map = new Map<K, Set<V>>();

  add(key: K, value: V): void {
    const set = this.map.get(key);
    if (set === undefined) this.map.set(key, new Set([value]));
    else set.add(value);
  }

  delete(key: K, value: V): void {
    const set = this.map.get(key);
    if (set === undefined) return;
    set.delete(value);
    if (set.size === 0) this.map.delete(key);
  }

  get(key: K): ReadonlySet<V> {
    return this.map.get(key) ?? EMPTY;
  }

  has(key: K): boolean {
    return this.map.has(key);
  }

  get size(): number {
    return this.map.size;
  }
}
const EMPTY: ReadonlySet<never> = new Set();

/** This tracker's open sessions: by id, by user, and by the files they watch. */
export class SessionRegistry {
  private readonly byId = new Map<string, Session>();
  private readonly byUser = new SetMap<string, Session>();
  private readonly watchers = new SetMap<string, Session>();

  add(s: Session): void {
    this.byId.set(s.id, s);
    this.byUser.add(s.caller.userId, s);
  }

  /** Forgets a closed session everywhere, its watches too. */
  remove(s: Session): void {
    this.byId.delete(s.id);
    this.byUser.delete(s.caller.userId, s);
    for (const f of s.watching ?? []) this.watchers.delete(f, s);
  }

  get(id: string): Session | undefined {
    return this.byId.get(id);
  }

  all(): IterableIterator<Session> {
    return this.byId.values();
  }

  get size(): number {
    return this.byId.size;
  }

  /** Every session of the user, greeted or not. */
  ofUser(userId: string): ReadonlySet<Session> {
    return this.byUser.get(userId);
  }

  /** The user's sessions that said hello (the others catch up after theirs). */
  *greetedOf(userId: string): Generator<Session> {
    for (const s of this.byUser.get(userId)) if (s.info !== undefined) yield s;
  }

  hasUser(userId: string): boolean {
    return this.byUser.has(userId);
  }

  watch(s: Session, fileId: string): void {
    s.watching ??= new Set();
    s.watching.add(fileId);
    this.watchers.add(fileId, s);
  }

  unwatch(s: Session, fileId: string): void {
    s.watching?.delete(fileId);
    this.watchers.delete(fileId, s);
  }

  /** Whether any session here watches a file: if none, no seeder's news concerns this tracker. */
  hasWatchers(): boolean {
    return this.watchers.size > 0;
  }

  watchersOf(fileId: string): ReadonlySet<Session> {
    return this.watchers.get(fileId);
  }
}
