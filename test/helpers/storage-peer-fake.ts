// A storage peer reduced to its session, for tracker tests (issue 16): it
// follows the planner's orders without moving any bytes.
import type { TrackerMessage } from '../../src/protocol/session.js';
import { openSession, randomPeerId, type SessionClient } from './tracker.js';

/**
 * A tracker's flags for storage tests: a short storage grace, and dead sessions noticed within
 * 300 ms. `loose`: within 5 s instead, for suites of many real processes on a loaded machine,
 * where 300 ms heartbeats are missed and a live peer's session dropped; a killed peer's session
 * still ends at once, with its socket.
 */
export function storageTrackerArgs(graceMs: number, heartbeat: 'tight' | 'loose' = 'tight'): string[] {
  const [interval, timeout] = heartbeat === 'tight' ? [200, 300] : [1000, 5000];
  return [
    '--storage-grace-ms',
    String(graceMs),
    '--heartbeat-interval-ms',
    String(interval),
    '--heartbeat-timeout-ms',
    String(timeout),
  ];
}

export type Order = Extract<TrackerMessage, { type: 'replicate' | 'drop' }>;

/**
 * What a storage peer daemon does, reduced to the session: it fetches
 * nothing, but on `replicate` it reports the file held and announces it; on
 * `drop` it forgets and unannounces it. `corrupt()` reports a copy damaged.
 */
export class FakeStoragePeer {
  readonly peerId = randomPeerId();
  readonly held = new Map<string, Set<string>>();
  readonly orders: Order[] = [];
  session: SessionClient | undefined;
  /** While set, orders are recorded but not carried out, as if their fetches were under way; see release(). */
  holdBack = false;
  private pending: Order[] = [];
  private seq = 0;
  constructor(
    readonly userId: string,
    readonly token: string,
    readonly zone: string,
  ) {}

  files(groupId: string): string[] {
    return [...(this.held.get(groupId) ?? [])].sort();
  }

  async connect(url: string): Promise<void> {
    const s = await openSession(url, this.token);
    this.session = s;
    s.ws.on('message', (data) => {
      const m = JSON.parse(data.toString()) as TrackerMessage;
      if (m.type !== 'replicate' && m.type !== 'drop') return;
      this.orders.push(m);
      if (this.holdBack) this.pending.push(m);
      else this.carryOut(m);
    });
    const seeding = [...new Set([...this.held.values()].flatMap((set) => [...set]))];
    s.raw({ type: 'hello', v: 1, id: 'hi', peerId: this.peerId, addresses: ['127.0.0.1:9'], seeding });
    await s.next('welcome');
    const groups = [...this.held].map(([groupId, set]) => ({ groupId, held: [...set], complete: true }));
    if (groups.length > 0) this.send({ type: 'replicas', groups });
  }

  /** Carries out the orders held back, and those to come. */
  release(): void {
    this.holdBack = false;
    for (const m of this.pending.splice(0)) this.carryOut(m);
  }

  private carryOut(m: Order): void {
    const set = this.held.get(m.groupId) ?? new Set();
    this.held.set(m.groupId, set);
    if (m.type === 'replicate') {
      set.add(m.fileId);
      this.send({ type: 'announce', files: [m.fileId] });
      this.send({ type: 'replicas', groups: [{ groupId: m.groupId, held: [m.fileId] }] });
    } else {
      set.delete(m.fileId);
      this.send({ type: 'unannounce', files: [m.fileId] });
    }
  }

  send(message: Record<string, unknown>): void {
    this.session?.raw({ ...message, id: `m${++this.seq}` });
  }

  corrupt(groupId: string, fileId: string): void {
    this.send({ type: 'replicas', groups: [{ groupId, held: [], corrupt: [fileId] }] });
  }

  async disconnect(): Promise<void> {
    await this.session?.close();
    this.session = undefined;
  }
}
