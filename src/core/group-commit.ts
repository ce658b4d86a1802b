/**
 * Group commit over lanes: jobs are gathered and written in batches, one
 * batch in flight per lane, the lanes side by side. A job's lane comes from
 * its key (a stream, say), so jobs of one key are written in the order they
 * were submitted and never by two batches at once; different keys spread
 * over the lanes and their batches run in parallel (one store connection
 * each). A lane that is idle waits `lingerMs` after its first job for others
 * to join (0: until the current turn of the event loop is over); a busy lane
 * gathers whatever arrives while its batch is written and writes it next
 * (with `takeTurnsMs`, the lanes' batches go one at a time, bounded).
 * A job settles only when its batch's write settled: nothing is acknowledged
 * before it is stored.
 */

/**
 * A write's result for one job that failed on its own (the others of its batch were written):
 * that job is rejected with `error`, the others resolve.
 */
export class JobFailed {
  constructor(readonly error: unknown) {}
}

export interface GroupCommitTimer {
  cancel(): void;
}

export interface GroupCommitTimers {
  setTimeout(fn: () => void, ms: number): GroupCommitTimer;
}

export interface GroupCommitOptions<J, R> {
  /** Batches in flight at once, at most (one per lane). */
  lanes: number;
  /** The key that orders jobs: jobs of one key go through one lane. */
  keyOf(job: J): string;
  /** Jobs per batch, at most (bounds a batch's latency under a flood). */
  maxBatch: number;
  /** How long an idle lane gathers before it writes; 0 waits only for the end of the loop's turn. */
  lingerMs: number;
  /**
   * When above 0, the lanes take turns: a lane with a batch to write while another lane's batch
   * is in flight waits for it (lanes waiting go in the order they began to wait), and gathers
   * meanwhile, so that the same jobs make fewer, larger batches where a batch costs the store
   * much more than a job; one that has waited this long writes anyway, so that a batch held up
   * elsewhere (a lock another writer holds) holds the other lanes up no longer. A lane with
   * nothing else in flight writes at once: this adds no wait to a lone batch.
   */
  takeTurnsMs?: number;
  /** Where the linger's and turns' timers come from (a fake clock in tests). */
  timers?: GroupCommitTimers;
  /**
   * Writes a batch: one result per job, in order (a `JobFailed` rejects its job alone); a throw
   * fails every job of the batch.
   */
  write(jobs: J[], lane: number): Promise<(R | JobFailed)[]>;
  /** After a lane's batch settled, before the next: extra work of that lane (optional). */
  afterBatch?(lane: number): Promise<void>;
}

export interface GroupCommit<J, R> {
  submit(job: J): Promise<R>;
  /** The lane a key's jobs go through. */
  laneOf(key: string): number;
  /** Wakes a lane that has nothing queued, so that `afterBatch` runs (other work queued for it). */
  wake(lane: number): void;
  /** Settles once every lane is idle with nothing queued. */
  drain(): Promise<void>;
}

interface Queued<J, R> {
  job: J;
  resolve: (r: R) => void;
  reject: (e: unknown) => void;
}

interface Lane<J, R> {
  queue: Queued<J, R>[];
  /** A flush waiting for its start (linger) or running. */
  active: Promise<void> | undefined;
  woken: boolean;
}

const realTimers: GroupCommitTimers = {
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
};

/** FNV-1a: a stable, cheap hash of a key to a lane (the same on every tracker). */
export function laneOfKey(key: string, lanes: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % lanes;
}

export function createGroupCommit<J, R>(options: GroupCommitOptions<J, R>): GroupCommit<J, R> {
  const { lanes: count, maxBatch, lingerMs } = options;
  if (!(count >= 1) || !(maxBatch >= 1))
    throw new RangeError('group commit needs a lane and a batch of 1 or more');
  const timers = options.timers ?? realTimers;
  const turnsMs = options.takeTurnsMs ?? 0;
  /** Batches in flight (takeTurnsMs), and the lanes waiting for their turn, first come first. */
  let writing = 0;
  const turns: (() => void)[] = [];
  const lanes: Lane<J, R>[] = Array.from({ length: count }, () => ({
    queue: [],
    active: undefined,
    woken: false,
  }));

  const startAfterLinger = () =>
    new Promise<void>((resolve) => {
      if (lingerMs > 0) timers.setTimeout(resolve, lingerMs);
      else setImmediate(resolve);
    });

  /** Settles when this lane may write: at once if nothing else is in flight (undefined). */
  function takeTurn(): Promise<void> | undefined {
    if (writing === 0 && turns.length === 0) {
      writing++;
      return undefined;
    }
    return new Promise<void>((resolve) => {
      const grant = () => {
        timer.cancel();
        writing++;
        resolve();
      };
      const timer = timers.setTimeout(() => {
        const i = turns.indexOf(grant);
        if (i >= 0) {
          turns.splice(i, 1);
          grant();
        }
      }, turnsMs);
      turns.push(grant);
    });
  }

  /** A batch settled: the lane that waited longest goes next (before this lane's next batch). */
  function endTurn() {
    writing--;
    if (writing === 0) turns.shift()?.();
  }

  async function flush(lane: Lane<J, R>, index: number): Promise<void> {
    while (lane.queue.length > 0 || lane.woken) {
      lane.woken = false;
      if (lane.queue.length > 0) {
        if (turnsMs > 0) await takeTurn();
        const batch = lane.queue.splice(0, maxBatch);
        let results: (R | JobFailed)[];
        try {
          results = await options.write(
            batch.map((q) => q.job),
            index,
          );
        } catch (err) {
          for (const q of batch) q.reject(err);
          results = [];
        } finally {
          if (turnsMs > 0) endTurn();
        }
        for (const [i, r] of results.entries()) {
          if (r instanceof JobFailed) batch[i]!.reject(r.error);
          else batch[i]!.resolve(r);
        }
      }
      if (options.afterBatch !== undefined) await options.afterBatch(index).catch(() => {});
    }
  }

  function kick(index: number) {
    const lane = lanes[index]!;
    if (lane.active !== undefined) return;
    lane.active = startAfterLinger()
      .then(() => flush(lane, index))
      .finally(() => {
        lane.active = undefined;
        if (lane.queue.length > 0 || lane.woken) kick(index);
      });
  }

  const laneOf = (key: string) => (count === 1 ? 0 : laneOfKey(key, count));

  return {
    laneOf,
    submit(job) {
      const index = laneOf(options.keyOf(job));
      const done = new Promise<R>((resolve, reject) => {
        lanes[index]!.queue.push({ job, resolve, reject });
      });
      kick(index);
      return done;
    },
    wake(index) {
      lanes[index]!.woken = true;
      kick(index);
    },
    async drain() {
      for (;;) {
        const busy = lanes.find((l) => l.active !== undefined || l.queue.length > 0 || l.woken);
        if (busy === undefined) return;
        if (busy.active !== undefined) await busy.active;
        else await new Promise((r) => setImmediate(r));
      }
    },
  };
}
