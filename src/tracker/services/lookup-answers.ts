/**
 * A file lookup's answer (GET …/files/:file) as JSON text, kept per (group, file id) so that a
 * hot file is not serialized again on every request (its manifest spliced in, its seeders and
 * sharers stringified: the largest part of the lookup's own CPU).
 *
 * No invalidation of its own: an answer is built from parts the read caches hold (the listing,
 * the live seeders, the sharers; the manifest never changes for a file id) and is reused only
 * while the read caches still return those very objects. Whatever drops or reloads one of them
 * (an announce, a leave, a member removed, a file deleted, a TTL) makes the next lookup build
 * the answer again. Membership is checked before the answer is looked at, as before: the text is
 * the same for every member of the group.
 */
export interface LookupAnswers {
  /** The answer built from exactly these parts (compared by identity), or undefined. */
  get(key: string, parts: readonly unknown[]): string | undefined;
  set(key: string, parts: readonly unknown[], json: string): void;
}

export function createLookupAnswers(options: { maxEntries: number; maxBytes: number }): LookupAnswers {
  const entries = new Map<string, { parts: readonly unknown[]; json: string }>();
  let bytes = 0;
  const drop = (key: string) => {
    const e = entries.get(key);
    if (e === undefined) return;
    entries.delete(key);
    bytes -= e.json.length;
  };
  return {
    get(key, parts) {
      const e = entries.get(key);
      if (e === undefined || e.parts.length !== parts.length) return undefined;
      for (let i = 0; i < parts.length; i++) if (e.parts[i] !== parts[i]) return undefined;
      return e.json;
    },
    set(key, parts, json) {
      drop(key);
      if (options.maxEntries <= 0 || json.length > options.maxBytes) return;
      entries.set(key, { parts, json });
      bytes += json.length;
      // Oldest first out (Map iteration is insertion order), bounded in entries and in characters.
      for (const k of entries.keys()) {
        if (entries.size <= options.maxEntries && bytes <= options.maxBytes) break;
        drop(k);
      }
    },
  };
}
