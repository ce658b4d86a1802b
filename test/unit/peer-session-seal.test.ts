import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { startPeerDaemon } from '../../src/peer/index.js';
import type { Notice } from '../../src/peer/notices.js';
import { PeerStore } from '../../src/peer/store/index.js';
import { tempDir } from '../helpers/temp-dir.js';

// The saved tracker session at rest: sealed with DIR/session.key (0600), so peer.db alone holds
// no token; a plaintext session of an earlier coterie is sealed on first load; a lost key logs
// the user out with a notice instead of crashing.

/** A scratch data directory, removed when the test finishes. */
const scratch = () => tempDir('coterie-seal-').path;

const TOKEN = 'Zx9-secret-token-of-ann_0123456789abcdefghijk';

/** The meta row as SQLite holds it, read behind the store's back. */
function rawSessionRow(dir: string): string | undefined {
  const db = new Database(join(dir, 'peer.db'), { readonly: true });
  try {
    return (db.prepare("SELECT value FROM meta WHERE key = 'session'").get() as { value: string } | undefined)
      ?.value;
  } finally {
    db.close();
  }
}

/** Every byte of peer.db and its side files, as a copy would hold them. */
const filesText = (dir: string) =>
  ['peer.db', 'peer.db-wal', 'peer.db-shm']
    .map((f) => {
      try {
        return readFileSync(join(dir, f)).toString('latin1');
      } catch {
        return '';
      }
    })
    .join('');

describe('peer session at rest', () => {
  it('stores the token sealed: neither the row nor the files hold it, and the store reads it back', () => {
    const dir = scratch();
    const store = new PeerStore(dir);
    try {
      store.setSession({ userId: 'ann', token: TOKEN });
      expect(store.getSession()).toEqual({ userId: 'ann', token: TOKEN });
      const raw = rawSessionRow(dir)!;
      expect(raw).not.toContain(TOKEN);
      expect(JSON.parse(raw)).toMatchObject({ userId: 'ann', sealed: expect.stringMatching(/^v1\./) });
      expect(filesText(dir)).not.toContain(TOKEN);
      expect(statSync(join(dir, 'session.key')).mode & 0o777).toBe(0o600);
      expect(statSync(join(dir, 'peer.db')).mode & 0o777).toBe(0o600);
    } finally {
      store.close();
    }
    const again = new PeerStore(dir);
    try {
      expect(again.getSession()).toEqual({ userId: 'ann', token: TOKEN });
      expect(again.sessionNotice).toBeUndefined();
    } finally {
      again.close();
    }
  });

  it('seals a plaintext session of an earlier coterie on first load, and it still logs in', () => {
    const dir = scratch();
    const old = new PeerStore(dir);
    old.setMeta('session', JSON.stringify({ userId: 'ann', token: TOKEN }));
    old.close();
    rmSync(join(dir, 'session.key'));

    const store = new PeerStore(dir);
    try {
      expect(store.getSession()).toEqual({ userId: 'ann', token: TOKEN });
      expect(store.sessionNotice).toBeUndefined();
      expect(rawSessionRow(dir)).not.toContain(TOKEN);
    } finally {
      store.close();
    }
  });

  it('logs out with a notice, never a crash, when session.key is missing or another one', () => {
    for (const damage of ['missing', 'replaced', 'garbage'] as const) {
      const dir = scratch();
      const first = new PeerStore(dir);
      first.setSession({ userId: 'ann', token: TOKEN });
      first.close();
      const keyFile = join(dir, 'session.key');
      if (damage === 'missing') rmSync(keyFile);
      else
        writeFileSync(
          keyFile,
          damage === 'replaced' ? `${Buffer.alloc(32, 9).toString('base64url')}\n` : 'x',
        );

      const store = new PeerStore(dir);
      try {
        expect(store.getSession(), damage).toBeUndefined();
        expect(store.sessionNotice, damage).toMatch(/saved login of 'ann' could not be read.*login/);
        // A new login is sealed with the key now in place and survives a restart.
        store.setSession({ userId: 'ann', token: `${TOKEN}2` });
      } finally {
        store.close();
      }
      const reopened = new PeerStore(dir);
      try {
        expect(reopened.getSession(), damage).toEqual({ userId: 'ann', token: `${TOKEN}2` });
        expect(reopened.sessionNotice).toBeUndefined();
      } finally {
        reopened.close();
      }
    }
  });

  it('a daemon whose session.key went missing starts logged out and says so', async () => {
    const dir = scratch();
    const first = new PeerStore(dir);
    first.setSession({ userId: 'ann', token: TOKEN });
    first.close();
    rmSync(join(dir, 'session.key'));

    const daemon = await startPeerDaemon({ dataDir: dir, trackers: ['http://127.0.0.1:1'] });
    const notices: Notice[] = [];
    daemon.on('notice', (n) => notices.push(n));
    try {
      await new Promise((r) => setTimeout(r, 50));
      expect(notices.map((n) => n.text)).toContainEqual(
        expect.stringMatching(/saved login of 'ann' could not be read/),
      );
      expect(await daemon.execute('status', [])).toMatchObject({ userId: null });
    } finally {
      await daemon.stop();
    }
  });
});
