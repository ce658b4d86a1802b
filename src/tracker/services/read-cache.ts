/**
 * A small read-through cache for the hot lookups (membership, a file's live
 * seeders). Entries are invalidated by the events that change them (on the
 * bus, so every tracker of a cluster invalidates too) and expire after a short
 * TTL anyway, which bounds staleness should an event be lost. Each entry is
 * filed under one tag (a group id or a file id) so that an event drops exactly
 * the entries it affects.
 */
export interface ReadCache<V> {
  get(key: string): V | undefined;
  /** Read before loading a value: set() ignores values loaded before a later invalidation. */
  generation(): number;
  set(key: string, tag: string, value: V, loadedAtGeneration: number): void;
  /** The entry at `key`, or what `load` reads, kept under `tag` unless an invalidation came meanwhile. */
  through(key: string, tag: string, load: () => Promise<V>): Promise<V>;
  invalidateTag(tag: string): void;
  clear(): void;
}

export function createReadCache<V>(options: {
  ttlMs: number;
  maxEntries: number;
  now: () => number;
}): ReadCache<V> {
  const entries = new Map<string, { value: V; tag: string; at: number }>();
  const tags = new Map<string, Set<string>>();
  let generation = 0;
  const drop = (key: string) => {
    const e = entries.get(key);
    if (e === undefined) return;
    entries.delete(key);
    const set = tags.get(e.tag);
    set?.delete(key);
    if (set?.size === 0) tags.delete(e.tag);
  };
  const cache: ReadCache<V> = {
    get(key) {
      const e = entries.get(key);
      if (e === undefined) return undefined;
      if (options.now() - e.at >= options.ttlMs) {
        drop(key);
        return undefined;
      }
      return e.value;
    },
    generation: () => generation,
    set(key, tag, value, loadedAtGeneration) {
      // A value read from the store while an invalidation happened may be stale: do not keep it.
      if (options.ttlMs <= 0 || loadedAtGeneration !== generation) return;
      drop(key);
      // Oldest first out: Map iteration order is insertion order.
      if (entries.size >= options.maxEntries) drop(entries.keys().next().value!);
      entries.set(key, { value, tag, at: options.now() });
      const set = tags.get(tag);
      if (set === undefined) tags.set(tag, new Set([key]));
      else set.add(key);
    },
    invalidateTag(tag) {
      generation++;
      for (const key of [...(tags.get(tag) ?? [])]) drop(key);
    },
    async through(key, tag, load) {
      const hit = cache.get(key);
      if (hit !== undefined) return hit;
      const gen = generation;
      const found = await load();
      cache.set(key, tag, found, gen);
      return found;
    },
    clear() {
      generation++;
      entries.clear();
      tags.clear();
    },
  };
  return cache;
}
