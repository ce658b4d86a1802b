/**
 * At most `max` files of a folder download open at once (each partial file
 * holds its directory, its part file and perhaps an O_DIRECT descriptor): a
 * tree of many large files fetched in scattered order would otherwise hold
 * every one open until it finishes, and reach the process's open-file limit.
 *
 * A file is used through `use(k, fn)`: opened on demand, pinned while `fn`
 * runs, and afterwards the least recently used unpinned one is closed when
 * another must open. When every open file is pinned, `use` waits for one to
 * be released: the limit holds even while many writes are in flight. (Not
 * lru-cache: it neither pins entries in use nor waits for room.)
 */
export class OpenFiles<V> {
  /** Open (or opening) files, least recently used first, and how many callers use each now. */
  readonly #open = new Map<number, { value: Promise<V>; users: number }>();
  /** Files being closed: they still hold their descriptors, and open again only once closed. */
  readonly #closing = new Map<number, Promise<void>>();
  readonly #waiting: (() => void)[] = [];
  /** The most files open at once, how many were closed to make room, and waiters woken. */
  peak = 0;
  evictions = 0;
  wakeups = 0;

  constructor(
    readonly max: number,
    private readonly openFile: (k: number) => Promise<V>,
    /** Closes a file made room for; it may be opened again later. */
    private readonly closeFile: (k: number, v: V) => Promise<void>,
  ) {
    if (!(max >= 1)) throw new RangeError(`at most ${max} open files: need at least 1`);
  }

  /** Files open now, counting the ones being opened or closed. */
  get size(): number {
    return this.#open.size + this.#closing.size;
  }

  has(k: number): boolean {
    return this.#open.has(k);
  }

  /** Runs `fn` with file `k` open (opened now if need be), keeping it open until `fn` settles. */
  async use<T>(k: number, fn: (v: V) => Promise<T>): Promise<T> {
    const entry = await this.#acquire(k);
    try {
      return await fn(await entry.value);
    } finally {
      entry.users--;
      if (entry.users === 0) this.#wakeOne();
    }
  }

  /** Forgets file `k` without closing it (the caller closed it: a finished file). */
  forget(k: number): void {
    if (this.#open.delete(k)) this.#wakeOne();
  }

  /** Every open file, for closing them all at the end. */
  async values(): Promise<V[]> {
    const all = await Promise.allSettled([...this.#open.values()].map((e) => e.value));
    this.#open.clear();
    return all.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  }

  async #acquire(k: number): Promise<{ value: Promise<V>; users: number }> {
    for (;;) {
      const closing = this.#closing.get(k);
      if (closing !== undefined) {
        await closing;
        continue;
      }
      const hit = this.#open.get(k);
      if (hit !== undefined) {
        this.#open.delete(k);
        this.#open.set(k, hit); // most recently used last
        hit.users++;
        this.#passOn();
        return hit;
      }
      if (this.size < this.max) {
        const entry = this.#start(k);
        this.#passOn();
        return entry;
      }
      // Full: close the least recently used idle file, or wait for one to be released; then
      // look again once something changed (the close done, or a file released or forgotten).
      const idle = this.#leastRecentlyUsedIdle();
      if (idle !== undefined) this.#evict(idle[0], idle[1].value);
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
  }

  #leastRecentlyUsedIdle(): [number, { value: Promise<V> }] | undefined {
    for (const e of this.#open) if (e[1].users === 0) return e;
    return undefined;
  }

  /**
   * One waiter is woken per room made (a file released, forgotten, closed or failed to open),
   * not all of them: a tree of 1,500 small files queues as many writes behind 64 open files,
   * and waking every one of them at each release cost seconds of CPU, all but one to wait again.
   * A waiter that got in without taking the room it was woken for passes the turn on.
   */
  #wakeOne(): void {
    const next = this.#waiting.shift();
    if (next === undefined) return;
    this.wakeups++;
    next();
  }

  #passOn(): void {
    if (this.#waiting.length === 0) return;
    if (this.size < this.max || this.#leastRecentlyUsedIdle() !== undefined) this.#wakeOne();
  }

  #start(k: number): { value: Promise<V>; users: number } {
    const entry = { value: this.openFile(k), users: 1 };
    this.#open.set(k, entry);
    this.peak = Math.max(this.peak, this.size);
    entry.value.catch(() => {
      // A file that failed to open holds nothing: the next use tries again.
      if (this.#open.get(k) === entry) this.#open.delete(k);
      this.#wakeOne();
    });
    return entry;
  }

  #evict(k: number, value: Promise<V>): void {
    this.#open.delete(k);
    this.evictions++;
    const closed = value
      .then((v) => this.closeFile(k, v))
      .catch(() => undefined)
      .finally(() => {
        this.#closing.delete(k);
        this.#wakeOne();
      });
    this.#closing.set(k, closed);
  }
}
