import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ensurePrivateFile, narrowExistingFiles } from '../../os/private-files.js';
import { CoterieError } from '../../protocol/errors.js';
import { PEER_DEFAULTS } from '../config.js';
import { DownloadRepository } from './downloads.js';
import { InboxRepository } from './inbox.js';
import { CONVERSIONS, MIGRATIONS, SCHEMA_VERSION } from './migrations.js';
import { OutboxRepository } from './outbox.js';
import { ReplicaRepository } from './replicas.js';
import { ScheduleRepository } from './schedule.js';
import { type SavedSession, SavedSessionSlot } from './secrets.js';
import { ShareRepository } from './shares.js';

export type { SavedSession } from './secrets.js';

/**
 * The peer's own durable state in DIR/peer.db: the saved tracker session (so
 * a restart stays logged in until `logout`), what it shares, and its
 * downloads (so they resume after a restart), the messages it received and
 * sent. The tracker never sees this. PeerStore opens and migrates the file and
 * keeps the meta table (the saved session); each area's tables have their
 * own repository.
 */
export class PeerStore {
  private readonly db: Database.Database;
  private readonly session: SavedSessionSlot;
  readonly shares: ShareRepository;
  readonly downloads: DownloadRepository;
  readonly inbox: InboxRepository;
  readonly outbox: OutboxRepository;
  /** A storage peer's replicas and offers (issue 16). */
  readonly replicas: ReplicaRepository;
  /** The weekly bandwidth schedule (issue 17). */
  readonly schedule: ScheduleRepository;

  constructor(dataDir: string) {
    const path = join(dataDir, 'peer.db');
    let db: Database.Database | undefined;
    try {
      // 0600 before SQLite opens it: its -wal and -shm files take the database's mode.
      ensurePrivateFile(path);
      db = new Database(path);
      db.pragma('journal_mode = WAL');
      db.pragma(`busy_timeout = ${PEER_DEFAULTS.storeBusyTimeoutMs}`);
      narrowExistingFiles([`${path}-wal`, `${path}-shm`]);
      this.db = db;
      this.migrate(path);
      this.session = new SavedSessionSlot(dataDir, {
        read: () => this.getMeta('session'),
        write: (value) => this.setMeta('session', value),
      });
      this.shares = new ShareRepository(db);
      this.downloads = new DownloadRepository(db);
      // The message tables show and take the logged-in user's messages ('' when nobody is).
      const owner = (): string => this.getSession()?.userId ?? '';
      this.inbox = new InboxRepository(db, owner);
      this.outbox = new OutboxRepository(db, owner);
      this.replicas = new ReplicaRepository(db);
      this.schedule = new ScheduleRepository(db);
    } catch (err) {
      db?.close();
      // A damaged or foreign file (SQLITE_NOTADB, SQLITE_CORRUPT): say which and what to do.
      throw CoterieError.from(
        err,
        'PATH_INVALID',
        (text) =>
          `cannot open ${path}: ${text}; move it away to start with an empty one (this peer then forgets its shares, downloads, login and local messages; its identity stays)`,
      );
    }
  }

  private migrate(path: string): void {
    const current = this.db.pragma('user_version', { simple: true }) as number;
    if (current > SCHEMA_VERSION) {
      throw new CoterieError(
        'PATH_INVALID',
        `${path} has schema ${current}, newer than this coterie's (${SCHEMA_VERSION}): run a newer coterie`,
      );
    }
    for (let v = current; v < SCHEMA_VERSION; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]!);
        CONVERSIONS[v + 1]?.(this.db);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  close(): void {
    this.db.close();
  }

  /** Set when the saved login could not be opened at start (session.key lost or replaced): say so. */
  get sessionNotice(): string | undefined {
    return this.session.notice;
  }

  // -- meta (session, tracker) --------------------------------------------

  getMeta(key: string): string | undefined {
    const row = this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as
      | { value: string }
      | undefined;
    return row?.value;
  }

  setMeta(key: string, value: string | undefined): void {
    if (value === undefined) this.db.prepare('DELETE FROM meta WHERE key = ?').run(key);
    else
      this.db
        .prepare(
          'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
        )
        .run(key, value);
  }

  getSession(): SavedSession | undefined {
    return this.session.get();
  }

  setSession(session: SavedSession | undefined): void {
    this.session.set(session);
  }
}
