import type { Kysely } from 'kysely';
import type { Database } from '../store/index.js';
import { goneTogether, offersWithSessions, peerState } from './storage-state.js';

/**
 * What the planner must plan again (issue 16): the groups whose files,
 * policy, storage peers or holders changed since their last plan. Events
 * on the bus name most of them; what changes with time alone is found here:
 * a storage peer connecting or leaving on any tracker, its grace running
 * out, its offer changing (one query over every offer per run), and a
 * fetch back-off ending (the time each group's next one ends).
 */
export interface DirtyGroups {
  /** A change named this group (a bus event, a failed plan). */
  mark(groupId: string): void;
  /** The back-off of some storage peer in this group ends at `at`: plan it then. */
  wakeAt(groupId: string, at: number): void;
  /** Takes the groups to plan now: those marked, those whose peers changed state, those whose wake time came. */
  take(now: number): Promise<string[]>;
}

export function createDirtyGroups(db: Kysely<Database>, graceMs: number): DirtyGroups {
  const marked = new Set<string>();
  const wakes = new Map<string, number>();
  /** Per group, its storage peers and their state at the last look. */
  let seen = new Map<string, string>();

  /** Each group's storage peers with their state, quota, zone and withdrawal: one string per group. */
  async function peerStates(now: number): Promise<Map<string, string>> {
    const rows = await offersWithSessions(db).orderBy('o.group_id').orderBy('o.peer_id').execute();
    const byGroup = new Map<
      string,
      { key: string; state: ReturnType<typeof peerState>; lastSeen: number }[]
    >();
    for (const r of rows) {
      const present = r.session_id !== null && r.session_id !== undefined;
      const lastSeen = Number(r.last_seen);
      const list = byGroup.get(r.group_id) ?? [];
      list.push({
        key: `${r.peer_id}/${r.quota_bytes}/${r.zone}/${r.withdrawing}`,
        state: peerState(present, lastSeen, now, graceMs),
        lastSeen: present ? now : lastSeen,
      });
      byGroup.set(r.group_id, list);
    }
    return new Map(
      [...byGroup].map(([g, peers]) => [
        g,
        goneTogether(peers, graceMs)
          .map((p) => `${p.key}/${p.state}`)
          .join(' '),
      ]),
    );
  }

  return {
    mark: (groupId) => marked.add(groupId),
    wakeAt(groupId, at) {
      const was = wakes.get(groupId);
      if (was === undefined || at < was) wakes.set(groupId, at);
    },
    async take(now) {
      const states = await peerStates(now);
      for (const g of new Set([...states.keys(), ...seen.keys()])) {
        if (states.get(g) !== seen.get(g)) marked.add(g);
      }
      seen = states;
      for (const [g, at] of wakes) {
        if (at > now) continue;
        wakes.delete(g);
        marked.add(g);
      }
      const out = [...marked].sort();
      marked.clear();
      return out;
    },
  };
}
