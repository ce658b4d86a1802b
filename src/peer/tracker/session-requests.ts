import { CoterieError } from '../../protocol/errors.js';
import type { TrackerMessage } from '../../protocol/session.js';

type Waiting = { resolve: (answer: TrackerMessage) => void; reject: (e: Error) => void };

/**
 * The requests one tracker session has sent and not yet had answered, by id:
 * each settles once, with its answer, its error frame, a timeout, or the loss
 * of the connection it went out on.
 */
export class SessionRequests {
  private nextId = 1;
  private readonly pending = new Map<number, Waiting>();

  /**
   * Sends a frame with a fresh id through `write`; resolves with its answer. With `timeoutMs`,
   * rejects TRACKER_UNAVAILABLE when none comes in time (a hung tracker must not hold a caller).
   */
  send(write: (id: number) => void, timeoutMs?: number): Promise<TrackerMessage> {
    const id = this.nextId++;
    const answer = new Promise<TrackerMessage>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      write(id);
    });
    if (timeoutMs === undefined) return answer;
    const late = new CoterieError('TRACKER_UNAVAILABLE', `no answer in ${timeoutMs} ms`);
    const timer = setTimeout(() => this.settle(id, late), timeoutMs);
    return answer.finally(() => clearTimeout(timer));
  }

  /** Settles the request with this id (answered, refused, or given up on), if it still waits. */
  settle(id: unknown, result: TrackerMessage | Error): void {
    const p = this.pending.get(Number(id));
    this.pending.delete(Number(id));
    if (result instanceof Error) p?.reject(result);
    else p?.resolve(result);
  }

  /** The connection went: every request still waiting fails (acted on or not, nobody can say). */
  failAll(reason: string): void {
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const p of waiting) p.reject(new CoterieError('TRACKER_UNAVAILABLE', `session ${reason}`));
  }
}
