import { describe, expect, it } from 'vitest';
import { createGroupCommit, type GroupCommitOptions, JobFailed, laneOfKey } from '../../src/core/index.js';
import { FakeClock } from '../helpers/fake-clock.js';

interface Job {
  key: string;
  n: number;
}

/** A writer whose batches settle when the test says, recording what each batch carried. */
function manualWriter() {
  const batches: { lane: number; jobs: Job[]; settle: (fail?: Error) => void }[] = [];
  const write = (jobs: Job[], lane: number) =>
    new Promise<string[]>((resolve, reject) => {
      batches.push({
        lane,
        jobs,
        settle: (fail) => (fail === undefined ? resolve(jobs.map((j) => `${j.key}#${j.n}`)) : reject(fail)),
      });
    });
  return { batches, write };
}

/** A key for each of lanes 0 and 1 (of `lanes`). */
const twoLaneKeys = (lanes: number): [string, string] => {
  const keys = Array.from({ length: 64 }, (_, i) => `d:k${i}:z`);
  return [keys.find((k) => laneOfKey(k, lanes) === 0)!, keys.find((k) => laneOfKey(k, lanes) === 1)!];
};

const turn = () => new Promise((r) => setImmediate(r));

/** A group commit of Jobs keyed by `key`, one lane and no linger unless `options` says otherwise. */
const groupCommit = (
  options: Partial<GroupCommitOptions<Job, string>> & Pick<GroupCommitOptions<Job, string>, 'write'>,
) =>
  createGroupCommit<Job, string>({ lanes: 1, keyOf: (j) => j.key, maxBatch: 100, lingerMs: 0, ...options });

describe('group commit', () => {
  it('gathers the jobs of the linger window into one batch, and acknowledges only after the write', async () => {
    const clock = new FakeClock();
    const w = manualWriter();
    const gc = groupCommit({
      lingerMs: 2,
      timers: clock,
      write: w.write,
    });
    const settled: string[] = [];
    const a = gc.submit({ key: 'a', n: 1 }).then((r) => settled.push(r));
    clock.advance(1);
    const b = gc.submit({ key: 'b', n: 1 }).then((r) => settled.push(r));
    await turn();
    expect(w.batches).toHaveLength(0); // still lingering: 1 ms of 2
    clock.advance(1);
    await turn();
    expect(w.batches).toHaveLength(1);
    expect(w.batches[0]!.jobs.map((j) => j.key)).toEqual(['a', 'b']);
    await turn();
    expect(settled).toEqual([]); // written but not committed: nothing acknowledged
    w.batches[0]!.settle();
    await Promise.all([a, b]);
    expect(settled).toEqual(['a#1', 'b#1']);
    await gc.drain();
  });

  it('writes what arrived during a batch as the next batch, without lingering again, bounded by maxBatch', async () => {
    const clock = new FakeClock();
    const w = manualWriter();
    const gc = groupCommit({
      maxBatch: 3,
      lingerMs: 5,
      timers: clock,
      write: w.write,
    });
    const all = [gc.submit({ key: 'k', n: 0 })];
    clock.advance(5);
    await turn();
    expect(w.batches).toHaveLength(1);
    for (let n = 1; n <= 4; n++) all.push(gc.submit({ key: 'k', n }));
    w.batches[0]!.settle();
    await turn();
    await turn();
    // No timer moved: the jobs that waited behind the batch go at once, three at most.
    expect(w.batches.map((b) => b.jobs.map((j) => j.n))).toEqual([[0], [1, 2, 3]]);
    w.batches[1]!.settle();
    await turn();
    await turn();
    expect(w.batches.map((b) => b.jobs.map((j) => j.n))).toEqual([[0], [1, 2, 3], [4]]);
    w.batches[2]!.settle();
    expect(await Promise.all(all)).toEqual(['k#0', 'k#1', 'k#2', 'k#3', 'k#4']);
  });

  it('keeps one key in one lane, in order, while other lanes write at the same time', async () => {
    const w = manualWriter();
    const gc = groupCommit({
      lanes: 4,
      write: w.write,
    });
    const keys = ['d:a:z', 'd:b:z', 'd:c:z', 'd:e:z', 'd:f:z', 'd:g:z', 'd:h:z', 'd:i:z'];
    const lanesUsed = new Set(keys.map((k) => laneOfKey(k, 4)));
    expect(lanesUsed.size).toBeGreaterThan(1);
    const pending = keys.flatMap((key) => [1, 2].map((n) => gc.submit({ key, n })));
    await turn();
    // One batch in flight per lane that has work, all at once.
    expect(w.batches.map((b) => b.lane).sort()).toEqual([...lanesUsed].sort());
    for (const b of w.batches) {
      expect(b.jobs.every((j) => gc.laneOf(j.key) === b.lane)).toBe(true);
      for (const key of keys) {
        const ns = b.jobs.filter((j) => j.key === key).map((j) => j.n);
        if (ns.length > 0) expect(ns).toEqual([1, 2]);
      }
    }
    // A lane busy with its batch takes no second one meanwhile.
    const busyLane = w.batches[0]!.lane;
    const next = gc.submit({ key: w.batches[0]!.jobs[0]!.key, n: 3 });
    await turn();
    expect(w.batches.filter((b) => b.lane === busyLane)).toHaveLength(1);
    for (const b of [...w.batches]) b.settle();
    await turn();
    await turn();
    expect(w.batches.filter((b) => b.lane === busyLane)).toHaveLength(2);
    w.batches.at(-1)!.settle();
    await Promise.all([...pending, next]);
    await gc.drain();
  });

  it('fails every job of a batch whose write failed, and goes on with the next', async () => {
    const w = manualWriter();
    const gc = groupCommit({
      write: w.write,
    });
    const first = [gc.submit({ key: 'a', n: 1 }), gc.submit({ key: 'b', n: 1 })];
    await turn();
    const later = gc.submit({ key: 'a', n: 2 });
    w.batches[0]!.settle(new Error('commit failed'));
    const outcomes = await Promise.allSettled(first);
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected']);
    await turn();
    w.batches[1]!.settle();
    expect(await later).toBe('a#2');
  });

  it('runs afterBatch when woken with nothing queued, and drains', async () => {
    const ran: number[] = [];
    const gc = groupCommit({
      lanes: 2,
      maxBatch: 10,
      write: async (jobs) => jobs.map((j) => j.key),
      afterBatch: async (lane) => {
        ran.push(lane);
      },
    });
    gc.wake(1);
    await gc.drain();
    expect(ran).toEqual([1]);
  });

  it('takes turns (takeTurnsMs): a lane gathers while another lane writes, then writes all it gathered', async () => {
    const clock = new FakeClock();
    const w = manualWriter();
    const gc = groupCommit({ lanes: 2, takeTurnsMs: 20, timers: clock, write: w.write });
    const [k0, k1] = twoLaneKeys(2);
    const first = gc.submit({ key: k0, n: 1 });
    await turn();
    expect(w.batches.map((b) => b.lane)).toEqual([0]); // alone: at once
    const gathered = [1, 2, 3].map((n) => gc.submit({ key: k1, n }));
    await turn();
    // Lane 1 waits for lane 0's batch: side by side it would have written [1] and then [2, 3].
    expect(w.batches).toHaveLength(1);
    const next0 = gc.submit({ key: k0, n: 2 });
    w.batches[0]!.settle();
    await turn();
    await turn();
    // Lane 1 waited longest: it goes next, with all three; lane 0's next batch waits for it.
    expect(w.batches.map((b) => [b.lane, b.jobs.map((j) => j.n)])).toEqual([
      [0, [1]],
      [1, [1, 2, 3]],
    ]);
    w.batches[1]!.settle();
    await turn();
    await turn();
    expect(w.batches.map((b) => [b.lane, b.jobs.map((j) => j.n)])[2]).toEqual([0, [2]]);
    w.batches[2]!.settle();
    expect(await Promise.all([first, ...gathered, next0])).toEqual([
      `${k0}#1`,
      `${k1}#1`,
      `${k1}#2`,
      `${k1}#3`,
      `${k0}#2`,
    ]);
    await gc.drain();
  });

  it('takes turns no longer than takeTurnsMs: a lane whose turn is held up writes anyway', async () => {
    const clock = new FakeClock();
    const w = manualWriter();
    const gc = groupCommit({ lanes: 2, takeTurnsMs: 20, timers: clock, write: w.write });
    const [k0, k1] = twoLaneKeys(2);
    const stuck = gc.submit({ key: k0, n: 1 });
    await turn();
    const waiting = gc.submit({ key: k1, n: 1 });
    await turn();
    clock.advance(19);
    await turn();
    expect(w.batches).toHaveLength(1);
    clock.advance(1);
    await turn();
    expect(w.batches.map((b) => b.lane)).toEqual([0, 1]);
    w.batches[1]!.settle();
    expect(await waiting).toBe(`${k1}#1`);
    // Nothing waits for turns once the held-up batch settles.
    w.batches[0]!.settle();
    await stuck;
    await gc.drain();
  });

  it('rejects a job its write answered with JobFailed, alone: the others of its batch resolve', async () => {
    const refused = new Error('this part of the batch failed');
    const gc = groupCommit({
      write: async (jobs) => jobs.map((j) => (j.n === 2 ? new JobFailed(refused) : `${j.key}#${j.n}`)),
    });
    const outcomes = await Promise.allSettled([1, 2, 3].map((n) => gc.submit({ key: 'k', n })));
    expect(outcomes).toEqual([
      { status: 'fulfilled', value: 'k#1' },
      { status: 'rejected', reason: refused },
      { status: 'fulfilled', value: 'k#3' },
    ]);
    await gc.drain();
  });
});
