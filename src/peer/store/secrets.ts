/**
 * The saved tracker session at rest: its token is sealed (AES-256-GCM) with
 * a key kept beside peer.db in a 0600 file, DIR/session.key, so that a copy
 * of peer.db (or of its -wal) alone logs nobody in. The user id stays in the
 * clear: it names whose messages the tables show, and is no credential.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { narrowExistingFiles, PRIVATE_FILE_MODE } from '../../os/private-files.js';

export const SESSION_KEY_FILE = 'session.key';

const KEY_BYTES = 32;
const IV_BYTES = 12;
const FORMAT = 'v1';

export interface SavedSession {
  userId: string;
  token: string;
}

/** What a stored session row holds once read. */
export type OpenedSession =
  | { kind: 'none' }
  | { kind: 'sealed'; session: SavedSession }
  /** Written by a coterie from before sealing: to be sealed now. */
  | { kind: 'plain'; session: SavedSession }
  /** Sealed with another key (session.key lost or replaced) or damaged: the user logs in again. */
  | { kind: 'unreadable'; userId: string | undefined };

/** The key of DIR/session.key, made on first use; a damaged one is replaced (the saved login is then lost). */
function loadOrCreateKey(dataDir: string): Buffer {
  const path = join(dataDir, SESSION_KEY_FILE);
  try {
    const key = Buffer.from(readFileSync(path, 'utf8').trim(), 'base64url');
    if (key.length === KEY_BYTES) return key;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const key = randomBytes(KEY_BYTES);
  writeFileSync(path, `${key.toString('base64url')}\n`, { mode: PRIVATE_FILE_MODE });
  narrowExistingFiles([path]); // a damaged file kept its old mode
  return key;
}

const aad = (userId: string) => Buffer.from(`coterie-session:${FORMAT}:${userId}`);

export class SessionSealer {
  private readonly key: Buffer;

  constructor(dataDir: string) {
    this.key = loadOrCreateKey(dataDir);
  }

  /** The meta row's value for SESSION: `{userId, sealed}` (JSON). */
  seal(session: SavedSession): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv).setAAD(aad(session.userId));
    const ct = Buffer.concat([cipher.update(session.token, 'utf8'), cipher.final()]);
    const sealed = [FORMAT, iv, ct, cipher.getAuthTag()]
      .map((p) => (typeof p === 'string' ? p : p.toString('base64url')))
      .join('.');
    return JSON.stringify({ userId: session.userId, sealed });
  }

  /** Reads a meta row's value (sealed, or plain from an earlier coterie). */
  open(raw: string | undefined): OpenedSession {
    if (raw === undefined) return { kind: 'none' };
    let v: { userId?: unknown; token?: unknown; sealed?: unknown };
    try {
      v = JSON.parse(raw) as typeof v;
    } catch {
      return { kind: 'unreadable', userId: undefined };
    }
    const userId = typeof v.userId === 'string' ? v.userId : undefined;
    if (userId === undefined) return { kind: 'unreadable', userId };
    if (typeof v.token === 'string') return { kind: 'plain', session: { userId, token: v.token } };
    const token = typeof v.sealed === 'string' ? this.unseal(userId, v.sealed) : undefined;
    return token === undefined
      ? { kind: 'unreadable', userId }
      : { kind: 'sealed', session: { userId, token } };
  }

  private unseal(userId: string, sealed: string): string | undefined {
    const [format, iv, ct, tag] = sealed.split('.');
    if (format !== FORMAT || iv === undefined || ct === undefined || tag === undefined) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'))
        .setAAD(aad(userId))
        .setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]).toString(
        'utf8',
      );
    } catch {
      return undefined; // another key, or a damaged row
    }
  }
}

/**
 * The meta row 'session' of peer.db, sealed. At start, a session saved in plain
 * text (by an earlier coterie) is sealed; one that cannot be opened (another
 * session.key) is dropped and `notice` says so. Reads are cached by the row's
 * text: the token is asked for on every tracker call.
 */
export class SavedSessionSlot {
  readonly notice: string | undefined;
  private readonly sealer: SessionSealer;
  private cache: { raw: string | undefined; session: SavedSession | undefined } | undefined;

  constructor(
    dataDir: string,
    private readonly row: { read(): string | undefined; write(value: string | undefined): void },
  ) {
    this.sealer = new SessionSealer(dataDir);
    const opened = this.sealer.open(row.read());
    if (opened.kind === 'plain') this.set(opened.session);
    if (opened.kind === 'unreadable') {
      row.write(undefined);
      this.notice = `the saved login${opened.userId === undefined ? '' : ` of '${opened.userId}'`} could not be read (session.key is missing or was replaced): run 'login <user_id> -' again`;
    }
  }

  get(): SavedSession | undefined {
    const raw = this.row.read();
    if (this.cache?.raw !== raw) {
      const opened = this.sealer.open(raw);
      // a damaged row means no session: the user logs in again
      const session = opened.kind === 'sealed' || opened.kind === 'plain' ? opened.session : undefined;
      this.cache = { raw, session };
    }
    return this.cache?.session;
  }

  set(session: SavedSession | undefined): void {
    this.row.write(session === undefined ? undefined : this.sealer.seal(session));
  }
}
