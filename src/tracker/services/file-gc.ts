import type { Transaction } from 'kysely';
import type { Logger } from 'pino';
import type { Database } from '../store/index.js';
import type { ServiceDeps } from './context.js';
import { takeLease } from './store-lease.js';

/**
 * Garbage collection of files and manifest pages. A `files` row and the
 * pages of its manifest outlive its listings: versions dropped by retention,
 * deleted names, names delisted once nobody keeps them, groups deleted. The
 * sweep removes them once nothing can ask for them any more, in three steps,
 * each in bounded batches of one transaction each (a tracker dying mid-sweep
 * leaves every batch applied whole or not at all, and the next run goes on):
 *
 * 1. mark: a file listed in no group gets `unlisted_at` (when the sweep first
 *    saw it so; a share or update that lists it again sets it back to null,
 *    and the sweep clears the mark of any file found listed);
 * 2. remove the files marked longer than the grace ago, still listed
 *    nowhere and with no replica row, with their page references and the
 *    pages no other file refers to;
 * 3. remove the pages no file refers to, uploaded longer than the orphan
 *    grace ago (an upload that died half-way).
 *
 * Exactly one tracker of a cluster sweeps at a time: it holds the `gc` lease
 * row (store-lease.ts, as the storage planner does).
 */
export interface FileGc {
  start(): void;
  /** Sweeps now (when this tracker holds the lease); what it removed, or undefined without the lease. */
  runNow(): Promise<SweepCounts | undefined>;
  stop(): Promise<void>;
}

export interface SweepCounts {
  /** Files found listed nowhere (their grace starts). */
  marked: number;
  /** Files removed (their rows and page references). */
  files: number;
  /** Pages removed because the last file referring to them went. */
  pages: number;
  /** Pages removed because no file ever referred to them (uploads that died). */
  orphans: number;
  /** Files listed nowhere waiting for their grace or their replicas' drops, after the run. */
  waiting: number;
}

export interface FileGcOptions {
  trackerId: string;
  /**
   * A file listed nowhere is kept this long. Tickets for it were issued only
   * while it was listed and bind for at most an hour (MAX_TICKET_TTL_SECONDS):
   * a download holding one still reads the manifest's pages meanwhile.
   */
  graceMs: number;
  /** A page no file refers to is kept this long after its last upload (an upload may be under way). */
  orphanGraceMs: number;
  /** Timer period (default 60 s). */
  intervalMs?: number;
  /** Rows per transaction (default 200). */
  batchRows?: number;
  /** Batches per step and run (default 50): a run is bounded, the rest is the next run's. */
  maxBatches?: number;
  logger: Logger;
  onSwept?: (counts: SweepCounts) => void;
  /** Tests: runs between two batches (throwing there is a tracker dying mid-sweep). */
  betweenBatches?: () => void | Promise<void>;
}

const LEASE = 'gc';

export function createFileGc(options: FileGcOptions) {
  return (deps: ServiceDeps): FileGc => {
    const { store, now } = deps;
    const db = store.db;
    const pg = store.dialect === 'postgres';
    const intervalMs = options.intervalMs ?? 60_000;
    const leaseMs = Math.max(3 * intervalMs, 3000);
    const batchRows = options.batchRows ?? 200;
    const maxBatches = options.maxBatches ?? 50;
    let timer: NodeJS.Timeout | undefined;
    let running: Promise<SweepCounts | undefined> | undefined;
    let stopped = false;

    /** Runs `batch` until it handles fewer than a full batch (or the run's bound); returns the rows handled. */
    async function inBatches(batch: () => Promise<number>): Promise<number> {
      let total = 0;
      for (let i = 0; i < maxBatches && !stopped; i++) {
        if (i > 0) await options.betweenBatches?.();
        const n = await batch();
        total += n;
        if (n < batchRows) break;
      }
      return total;
    }

    /**
     * Files listed in some group again lose their mark. The share that lists one clears it
     * itself; this catches a mark set while such a share was committing (on PostgreSQL, the
     * marking UPDATE re-checks its row but not its NOT EXISTS after waiting on the share's row
     * lock). Such a mark can make the grace short by at most one run's interval, when the file
     * is unlisted again before the next run: far inside the grace.
     */
    async function unmarkListed(): Promise<number> {
      const r = await db
        .updateTable('files')
        .set({ unlisted_at: null })
        .where('file_id', 'in', (eb) =>
          eb
            .selectFrom('files as f')
            .select('f.file_id')
            .where('f.unlisted_at', 'is not', null)
            .where(({ exists, selectFrom }) =>
              exists(
                selectFrom('group_files as gf')
                  .select('gf.group_id')
                  .whereRef('gf.file_id', '=', 'f.file_id'),
              ),
            )
            .limit(batchRows),
        )
        .executeTakeFirst();
      return Number(r.numUpdatedRows);
    }

    /** Files listed nowhere get `unlisted_at`: their grace starts now. */
    async function markUnlisted(t: number): Promise<number> {
      const r = await db
        .updateTable('files')
        .set({ unlisted_at: t })
        .where('file_id', 'in', (eb) =>
          eb
            .selectFrom('files as f')
            .select('f.file_id')
            .where('f.unlisted_at', 'is', null)
            .where(({ not, exists, selectFrom }) =>
              not(
                exists(
                  selectFrom('group_files as gf')
                    .select('gf.group_id')
                    .whereRef('gf.file_id', '=', 'f.file_id'),
                ),
              ),
            )
            .limit(batchRows),
        )
        .where('unlisted_at', 'is', null)
        .executeTakeFirst();
      return Number(r.numUpdatedRows);
    }

    /** One batch of files past their grace, with their references and the pages left without any. */
    async function removeFiles(t: number): Promise<{ files: number; pages: number }> {
      return store.transaction(async (trx) => {
        const ids = (
          await trx
            .selectFrom('files as f')
            .select('f.file_id')
            // Listed nowhere for the whole grace: every ticket for it has expired (they were issued
            // only while it was listed), so no download holding one still reads its pages.
            .where('f.unlisted_at', '<=', t - options.graceMs)
            // Listed again meanwhile (the mark is cleared then, but a share may be committing now).
            .where(({ not, exists, selectFrom }) =>
              not(
                exists(
                  selectFrom('group_files as gf')
                    .select('gf.group_id')
                    .whereRef('gf.file_id', '=', 'f.file_id'),
                ),
              ),
            )
            // No replica row, in any state: a storage peer holds it, fetches it (a replicate order in
            // flight) or has yet to be told to drop it. The planner drops the replicas of unlisted
            // files at its next run of the group (and deletes the rows); it reads replicas joined
            // with `files`, so removing the row first would strand them on the storage peer.
            .where(({ not, exists, selectFrom }) =>
              not(
                exists(
                  selectFrom('replicas as r').select('r.peer_id').whereRef('r.file_id', '=', 'f.file_id'),
                ),
              ),
            )
            .orderBy('f.file_id')
            .limit(batchRows)
            // A share listing one of these again waits on its row; with SKIP LOCKED, one doing so
            // now is left for the next run rather than waited for.
            .$if(pg, (q) => q.forUpdate().skipLocked())
            .execute()
        ).map((r) => r.file_id);
        if (ids.length === 0) return { files: 0, pages: 0 };
        const hashes = (
          await trx
            .selectFrom('manifest_page_refs')
            .select('hash')
            .distinct()
            .where('file_id', 'in', ids)
            .execute()
        ).map((r) => r.hash);
        await trx.deleteFrom('manifest_page_refs').where('file_id', 'in', ids).execute();
        // Back-offs of a file no one may fetch again mean nothing.
        await trx.deleteFrom('replica_backoffs').where('file_id', 'in', ids).execute();
        const files = await trx.deleteFrom('files').where('file_id', 'in', ids).executeTakeFirst();
        let pages = 0;
        for (let i = 0; i < hashes.length; i += batchRows) {
          pages += await deleteUnreferencedPages(trx, hashes.slice(i, i + batchRows));
        }
        return { files: Number(files.numDeletedRows), pages };
      });
    }

    /** Of these pages, removes those no file refers to any more (another tree may share them). */
    async function deleteUnreferencedPages(
      trx: Transaction<Database>,
      hashes: string[],
      uploadedBefore?: number,
    ): Promise<number> {
      const r = await trx
        .deleteFrom('manifest_pages')
        .where('hash', 'in', hashes)
        .$if(uploadedBefore !== undefined, (q) => q.where('created_at', '<', uploadedBefore!))
        .where(({ not, exists, selectFrom }) =>
          not(
            exists(
              selectFrom('manifest_page_refs as pr')
                .select('pr.file_id')
                .whereRef('pr.hash', '=', 'manifest_pages.hash'),
            ),
          ),
        )
        .executeTakeFirst();
      return Number(r.numDeletedRows);
    }

    /** One batch of pages no file refers to, last uploaded before the orphan grace. */
    async function removeOrphans(t: number): Promise<number> {
      const before = t - options.orphanGraceMs;
      return store.transaction(async (trx) => {
        const hashes = (
          await trx
            .selectFrom('manifest_pages as p')
            .select('p.hash')
            .where('p.created_at', '<', before)
            .where(({ not, exists, selectFrom }) =>
              not(
                exists(
                  selectFrom('manifest_page_refs as pr')
                    .select('pr.file_id')
                    .whereRef('pr.hash', '=', 'p.hash'),
                ),
              ),
            )
            .limit(batchRows)
            .execute()
        ).map((r) => r.hash);
        if (hashes.length === 0) return 0;
        // Conditions again in the DELETE: a share may have referred to one, or an upload touched it, since.
        return deleteUnreferencedPages(trx, hashes, before);
      });
    }

    async function sweep(): Promise<SweepCounts | undefined> {
      if (!(await takeLease(db, LEASE, options.trackerId, now(), leaseMs))) return undefined;
      const t = now();
      const counts: SweepCounts = { marked: 0, files: 0, pages: 0, orphans: 0, waiting: 0 };
      await inBatches(unmarkListed);
      counts.marked = await inBatches(() => markUnlisted(t));
      await inBatches(async () => {
        const r = await removeFiles(t);
        counts.files += r.files;
        counts.pages += r.pages;
        return r.files;
      });
      counts.orphans = await inBatches(() => removeOrphans(t));
      const waiting = await db
        .selectFrom('files')
        .select((eb) => eb.fn.countAll<number | string>().as('n'))
        .where('unlisted_at', 'is not', null)
        .executeTakeFirstOrThrow();
      counts.waiting = Number(waiting.n);
      if (counts.files + counts.pages + counts.orphans > 0)
        options.logger.info(counts, 'file garbage collected');
      options.onSwept?.(counts);
      return counts;
    }

    function run(): Promise<SweepCounts | undefined> {
      running ??= sweep()
        .catch((err: unknown) => {
          if (!stopped) options.logger.warn({ err }, 'file garbage collection failed; the next run goes on');
          return undefined;
        })
        .finally(() => {
          running = undefined;
        });
      return running;
    }

    return {
      start() {
        timer = setInterval(() => void run(), intervalMs);
        timer.unref();
      },
      async runNow() {
        await running;
        return run();
      },
      async stop() {
        stopped = true;
        if (timer !== undefined) clearInterval(timer);
        await running;
      },
    };
  };
}
