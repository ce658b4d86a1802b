import type Database from 'better-sqlite3';

/** Which inbox messages: some streams (else all but topics), unread ones only. */
export interface InboxFilter {
  streamIds?: string[];
  unread: boolean;
}

function inboxWhere(owner: string, filter: InboxFilter): { where: string; params: unknown[] } {
  const where: string[] = ['owner = ?'];
  const params: unknown[] = [owner];
  if (filter.streamIds !== undefined) {
    where.push(`stream_id IN (${filter.streamIds.map(() => '?').join(',')})`);
    params.push(...filter.streamIds);
  } else where.push("kind != 'topic'");
  if (filter.unread) where.push('read_at IS NULL');
  return { where: where.join(' AND '), params };
}

/**
 * Inbox rows in time order: the newest `limit`, or with `oldestFirst` the
 * oldest `limit` (a page of unread ones: read in the order they came, the
 * rest left for the next page).
 */
export function selectInbox(
  db: Database.Database,
  owner: string,
  filter: InboxFilter & { limit: number; oldestFirst?: boolean },
): unknown[] {
  const { where, params } = inboxWhere(owner, filter);
  const order = filter.oldestFirst === true ? '' : ' DESC';
  return db
    .prepare(
      `SELECT * FROM (SELECT * FROM inbox WHERE ${where} ORDER BY sent_at${order}, seq${order} LIMIT ?)
       ORDER BY sent_at, seq`,
    )
    .all(...params, filter.limit);
}

export function countInbox(db: Database.Database, owner: string, filter: InboxFilter): number {
  const { where, params } = inboxWhere(owner, filter);
  return (db.prepare(`SELECT COUNT(*) AS n FROM inbox WHERE ${where}`).get(...params) as { n: number }).n;
}
