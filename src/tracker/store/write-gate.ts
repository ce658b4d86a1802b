/**
 * Hands SQLite's write lock to the WAL checkpointer between two of the
 * tracker's write transactions, instead of letting the two meet in SQLite's
 * busy handler.
 *
 * When the checkpointer starts the log over (RESTART, checkpointer.ts) it
 * holds the write lock while it copies the last frames back and fsyncs the
 * database: 0.1–3 ms on a quiet disk, tens of milliseconds on a busy one. A
 * transaction that began meanwhile waited in SQLite's busy handler, which
 * sleeps on the event loop's thread in steps of 1, 2, 5, 10, 15, 20, 25 ms…:
 * a 2.2 ms hold stopped every session for 3 ms, a 3.1 ms one for 8 ms, a
 * 67 ms one for 78 ms, and no frame was read meanwhile (traced at 2,000
 * messages/s: these restarts were 141 of the 232 messages slower than 2 ms
 * in one run, docs/performance.md). With the gate, the checkpointer asks
 * first; once no write transaction is open it gets the lock, and writers
 * that come meanwhile wait on a promise, the event loop still turning, until
 * it says it is done. A writer never waits for the lock in SQLite then, and
 * what arrived meanwhile is committed together right after.
 *
 * `store.transaction`, `store.statement` and the write batcher pass through
 * the gate; `busy_timeout` stays as the safety net (another process on the
 * file, the worker's own passive checkpoints).
 */
export interface WriteGate {
  /** Runs a write transaction: at once, or once the checkpointer is done. */
  enter<T>(write: () => Promise<T>): Promise<T>;
  /** The checkpointer wants the lock: `go` runs once no write transaction is open; new ones wait. */
  close(go: () => void): void;
  /** The checkpointer is done (or gone): waiting writers go on. */
  open(): void;
}

export function createWriteGate(): WriteGate {
  /** Write transactions begun and not yet settled. */
  let open = 0;
  /** Set while closed: resolves when the gate opens again. */
  let closed: { opened: Promise<void>; resolve: () => void; go: (() => void) | undefined } | undefined;

  const settled = () => {
    open--;
    if (open === 0 && closed?.go !== undefined) {
      const go = closed.go;
      closed.go = undefined;
      go();
    }
  };

  const run = <T>(write: () => Promise<T>): Promise<T> => {
    open++;
    let p: Promise<T>;
    try {
      p = write();
    } catch (err) {
      settled();
      throw err;
    }
    return p.finally(settled);
  };

  return {
    enter(write) {
      // The common case adds no turn of the event loop: the gate is open.
      if (closed === undefined) return run(write);
      return closed.opened.then(() => run(write));
    },
    close(go) {
      if (closed !== undefined) return;
      let resolve!: () => void;
      const opened = new Promise<void>((r) => {
        resolve = r;
      });
      closed = { opened, resolve, go: undefined };
      if (open === 0) go();
      else closed.go = go;
    },
    open() {
      const c = closed;
      closed = undefined;
      c?.resolve();
    },
  };
}
