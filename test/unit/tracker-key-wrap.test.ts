import { copyFileSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import { type CryptoKey, importJWK, type JWK } from 'jose';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { signTicket, TICKET_ALG, verifyTicket } from '../../src/protocol/tickets.js';
import { startTracker } from '../../src/tracker/index.js';
import { readKeyFile, unwrapPrivateJwk } from '../../src/tracker/services/key-wrap.js';
import { client, tempDir } from '../helpers/tracker.js';

// The cluster's signing keys at rest: wrapped in the store under tracker.key (0600), so that a
// copied tracker.db alone signs nothing; plaintext rows of an earlier store are wrapped on start.

const dirs: ReturnType<typeof tempDir>[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) d.remove();
});

/** A logger whose lines the test reads. */
function capturedLogger() {
  const lines: { msg: string; [k: string]: unknown }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      done();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}

async function runTracker(dataDir: string, extra: { keyFile?: string; store?: string } = {}) {
  const { logger, lines } = capturedLogger();
  const tracker = await startTracker({ port: 0, dataDir, scryptLogN: 10, logger, ...extra });
  return { tracker, lines };
}

/** The cluster_keys rows of a copy of DIR's tracker.db (with its WAL, as a thief would copy it). */
function rowsOfCopy(dataDir: string, copyDir: string) {
  for (const f of ['tracker.db', 'tracker.db-wal', 'tracker.db-shm']) {
    if (existsSync(join(dataDir, f))) copyFileSync(join(dataDir, f), join(copyDir, f));
  }
  const db = new Database(join(copyDir, 'tracker.db'), { readonly: true });
  try {
    return db.prepare('SELECT kid, private_jwk, public_jwk FROM cluster_keys').all() as {
      kid: string;
      private_jwk: string;
      public_jwk: string;
    }[];
  } finally {
    db.close();
  }
}

const claims = { user: 'nobody-real', peer: 'p'.repeat(64), file: 'f'.repeat(64), group: 'films' };

describe('tracker signing keys at rest', () => {
  it('a copied tracker.db signs nothing; with tracker.key it does', async () => {
    const dir = tempDir();
    const thief = tempDir();
    dirs.push(dir, thief);
    const { tracker } = await runTracker(dir.path);
    let published: { keys: JWK[] };
    try {
      published = (await client(tracker.url).call<{ keys: JWK[] }>('GET', '/v1/cluster/keys')).body;
    } finally {
      await tracker.close();
    }
    expect(statSync(join(dir.path, 'tracker.key')).mode & 0o777).toBe(0o600);

    const rows = rowsOfCopy(dir.path, thief.path);
    expect(rows.length).toBeGreaterThan(0);
    // No private JWK anywhere in the files: not in a row, not in a WAL frame.
    for (const f of ['tracker.db', 'tracker.db-wal']) {
      const p = join(thief.path, f);
      if (existsSync(p)) expect(readFileSync(p).includes('"d":"')).toBe(false);
    }
    for (const row of rows) {
      expect(() => JSON.parse(row.private_jwk)).toThrow();
      await expect(importJWK(row.private_jwk as unknown as JWK, TICKET_ALG)).rejects.toThrow();
    }

    // With the key file, the same row is the cluster's signing key: its tickets verify.
    const key = readKeyFile(join(dir.path, 'tracker.key'))!;
    const row = rows[0]!;
    const jwk = await unwrapPrivateJwk(row.private_jwk, row.kid, key);
    expect(typeof jwk.d).toBe('string');
    const privateKey = (await importJWK(jwk, TICKET_ALG)) as CryptoKey;
    const ticket = await signTicket({ ...claims, ttlSeconds: 60 }, { privateKey, kid: row.kid });
    await expect(verifyTicket(ticket, published)).resolves.toMatchObject({ user: claims.user });
  });

  it('wraps the plaintext keys of an earlier store on first start (a log line), and they still sign', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const first = await runTracker(dir.path);
    const api = client(first.tracker.url);
    const before = (await api.call<{ keys: JWK[] }>('GET', '/v1/cluster/keys')).body;
    await first.tracker.close();
    // Make it a store of the previous coterie: the private JWK in clear, no key file.
    const db = new Database(join(dir.path, 'tracker.db'));
    const key = readKeyFile(join(dir.path, 'tracker.key'))!;
    for (const r of db.prepare('SELECT kid, private_jwk FROM cluster_keys').all() as {
      kid: string;
      private_jwk: string;
    }[]) {
      const plain = JSON.stringify(await unwrapPrivateJwk(r.private_jwk, r.kid, key));
      db.prepare('UPDATE cluster_keys SET private_jwk = ? WHERE kid = ?').run(plain, r.kid);
    }
    db.close();
    rmSync(join(dir.path, 'tracker.key'));

    const second = await runTracker(dir.path);
    try {
      expect(second.lines.some((l) => /wrapped a signing key/.test(l.msg))).toBe(true);
      const api2 = client(second.tracker.url);
      // The same published keys: tickets the cluster signed before still verify, new ones too.
      expect((await api2.call<{ keys: JWK[] }>('GET', '/v1/cluster/keys')).body).toEqual(before);
      const token = await api2.user('ann');
      const group = await api2.call('POST', '/v1/groups', { token, body: { groupId: 'films' } });
      expect(group.status).toBe(201);
    } finally {
      await second.tracker.close();
    }
    const reread = new Database(join(dir.path, 'tracker.db'), { readonly: true });
    const rows = reread.prepare('SELECT kid, private_jwk FROM cluster_keys').all() as {
      kid: string;
      private_jwk: string;
    }[];
    reread.close();
    const newKey = readKeyFile(join(dir.path, 'tracker.key'))!;
    for (const r of rows) {
      expect(r.private_jwk.startsWith('{')).toBe(false);
      expect(typeof (await unwrapPrivateJwk(r.private_jwk, r.kid, newKey)).d).toBe('string');
    }
  });

  it('refuses to start with KEY_MISMATCH when the key file is missing or another one', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const { tracker } = await runTracker(dir.path);
    await tracker.close();
    const keyFile = join(dir.path, 'tracker.key');
    const original = readFileSync(keyFile, 'utf8');

    // A second tracker of the "cluster" (same store) with its own data directory and no key file.
    const other = tempDir();
    dirs.push(other);
    const store = join(dir.path, 'tracker.db');
    await expect(runTracker(other.path, { store })).rejects.toMatchObject({
      code: 'KEY_MISMATCH',
      message: expect.stringMatching(/no key file at .*copy tracker\.key from a tracker of this cluster/),
    });
    // It made no key file of its own: the operator copies the cluster's there.
    expect(existsSync(join(other.path, 'tracker.key'))).toBe(false);

    // Another key file: refused, and the store is left as it was.
    writeFileSync(join(other.path, 'tracker.key'), `${Buffer.alloc(32, 7).toString('base64url')}\n`);
    await expect(runTracker(other.path, { store })).rejects.toMatchObject({ code: 'KEY_MISMATCH' });
    // A damaged one too.
    writeFileSync(join(other.path, 'tracker.key'), 'not a key\n');
    await expect(runTracker(other.path, { store })).rejects.toMatchObject({ code: 'KEY_MISMATCH' });

    // The cluster's key file, copied (here through the keyFile option): it starts.
    const copied = await runTracker(other.path, { store, keyFile });
    await copied.tracker.close();
    expect(readFileSync(keyFile, 'utf8')).toBe(original);
  });
});
