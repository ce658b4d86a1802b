import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { SessionSealer } from '../../src/peer/store/secrets.js';
import { BIN, randomFile } from '../helpers/cli-harness.js';
import { cliSwarm } from '../helpers/cli-swarm.js';
import { tempDir } from '../helpers/temp-dir.js';
import { request } from '../helpers/tracker.js';
import { until } from '../helpers/wait.js';

// Files are private by construction: after a tracker and two peers ran a user, a login, a share,
// a download and a message (so that the databases and their WAL exist), no other local user
// (`nobody`) reads a file or lists a directory under their data directories, whether those were
// made fresh or existed before, 0755 with 0644 files in them; the daemons run under umask 022.
// A copied peer.db logs no one in. A data directory that cannot be made private is refused.

const runuser = spawnSync('sh', ['-c', 'command -v runuser'], { encoding: 'utf8' }).stdout.trim();
const canTest = process.getuid?.() === 0 && runuser !== '';
if (!canTest) {
  process.stderr.write(
    '\n[at-rest-privacy] SKIPPED: these tests need root and runuser (they read files as the user nobody)\n\n',
  );
}

const NOBODY = Number(spawnSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).stdout.trim() || '65534');
/** Opens a temporary parent to `nobody` (tempDir makes it 0700: every test would pass for that alone). */
function openParent(root: string): string {
  chmodSync(root, 0o755);
  return root;
}

/** Every path under DIR (not DIR itself), depth first, symbolic links not followed. */
function walk(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    out.push(p);
    if (e.isDirectory()) out.push(...walk(p));
  }
  return out;
}

/** The paths of PATHS that `nobody` can read (a file: cat) or list (a directory: ls). */
function readableByNobody(paths: readonly string[]): string[] {
  const tagged = paths.map((p) => `${lstatSync(p).isDirectory() ? 'd' : 'f'}:${p}`);
  const script = `for e in "$@"; do p="\${e#?:}"; case "$e" in
    d:*) ls "$p" >/dev/null 2>&1 && echo "$p" ;;
    *) cat "$p" >/dev/null 2>&1 && echo "$p" ;;
  esac; done; exit 0`;
  const r = spawnSync('runuser', ['-u', 'nobody', '--', 'sh', '-c', script, 'sh', ...tagged], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (r.status !== 0) throw new Error(`runuser failed: ${r.stderr}`);
  return r.stdout.split('\n').filter(Boolean);
}

/** Fails with the list of what other users can reach under the data directories, by mode and as nobody. */
function expectPrivate(dataDirs: readonly string[]): string[] {
  const paths = dataDirs.flatMap((d) => [d, ...walk(d)]);
  const loose = paths
    .filter((p) => (lstatSync(p).mode & 0o077) !== 0)
    .map((p) => `${p} ${(lstatSync(p).mode & 0o777).toString(8)}`);
  expect(loose).toEqual([]);
  expect(readableByNobody(paths)).toEqual([]);
  return paths;
}

describe.runIf(canTest)(
  'data directories are private (read as the user nobody)',
  { timeout: 180_000 },
  () => {
    it('the parent is open to nobody, so the checks below test the data directories', () => {
      const root = openParent(tempDir('coterie-private-canary-').path);
      writeFileSync(join(root, 'canary'), 'x', { mode: 0o644 });
      chmodSync(join(root, 'canary'), 0o644);
      expect(readableByNobody([root, join(root, 'canary')])).toEqual([root, join(root, 'canary')]);
    });

    for (const layout of ['fresh', 'pre-existing 0755 with 0644 files'] as const) {
      it(`after a tracker and peers ran, created ${layout}`, async () => {
        // Every process under umask 022: what they make private, they make so themselves.
        const swarm = cliSwarm<'alice' | 'bob'>('coterie-private-', { umask: '022' });
        const root = openParent(swarm.root);
        const trackerDir = swarm.dir('tracker');
        const dir = { alice: swarm.dir('alice'), bob: swarm.dir('bob') };
        const dataDirs = [trackerDir, dir.alice, dir.bob];
        if (layout !== 'fresh') {
          for (const d of dataDirs) {
            mkdirSync(join(d, 'old'), { recursive: true });
            for (const p of [d, join(d, 'old')]) chmodSync(p, 0o755);
            for (const f of ['notes.txt', ...(d === trackerDir ? [] : ['peer.log'])]) {
              writeFileSync(join(d, f), 'left by an earlier run\n');
              chmodSync(join(d, f), 0o644);
            }
          }
        }
        const shared = join(root, 'files', 'doc.bin');
        await randomFile(shared, 300_000);
        const dl = join(root, 'dl');
        mkdirSync(dl);
        chmodSync(dl, 0o755);

        try {
          const url = await swarm.startTracker();
          for (const n of ['alice', 'bob'] as const) await swarm.startPeer(n);
          const as = async (n: 'alice' | 'bob', args: string[], input = '') =>
            (await swarm.typed(n, input, ...args)).out;
          // Passwords from a pipe ('-'), never on the command line.
          for (const n of ['alice', 'bob'] as const) {
            await as(n, ['create_user', n, '-'], `${n}-password\n`);
            await as(n, ['login', n, '-'], `${n}-password\n`);
          }
          await as('alice', ['create_group', 'films']);
          await as('bob', ['join_group', 'films']);
          await as('alice', ['accept_request', 'films', 'bob']);
          await as('alice', ['upload_file', shared, 'films']);
          await as('bob', ['download_file', 'films', 'doc.bin', dl, '--wait']);
          await as('alice', ['send_msg', 'bob', 'meet at eight']);
          await until(
            'bob to see the message',
            async () => (await as('bob', ['show_messages'])).includes('meet at eight'),
            20_000,
            200,
          );

          const running = expectPrivate(dataDirs);
          // A download's file is the user's alone too (group contents are private).
          expect(statSync(join(dl, 'doc.bin')).mode & 0o777).toBe(0o600);
          for (const f of ['tracker.db', 'tracker.db-wal', 'tracker.db-shm', 'tracker.key', 'tracker.id']) {
            expect(running).toContain(join(trackerDir, f));
          }
          for (const d of [dir.alice, dir.bob]) {
            for (const f of [
              'peer.db',
              'peer.db-wal',
              'peer.db-shm',
              'peer.log',
              'daemon.json',
              'session.key',
            ]) {
              expect(running).toContain(join(d, f));
            }
            expect(running).toContain(join(d, 'peer-key.pem'));
          }
          if (layout !== 'fresh') {
            // What was open is narrowed, and the daemons say so.
            expect(readFileSync(join(root, 'tracker.log'), 'utf8')).toMatch(/made it private/);
            expect(readFileSync(join(dir.alice, 'peer.log'), 'utf8')).toMatch(/made it private/);
          } else {
            await expectCopiedPeerDbLogsNoOneIn(url, dir.bob, root);
          }
        } finally {
          await swarm.stopAll();
        }
        // And once they stopped (checkpoints, removed files): still nothing for nobody.
        expectPrivate(dataDirs);
      });
    }

    it('refuses to start where the data directory cannot be made private (UNSAFE_PERMISSIONS)', async () => {
      const root = openParent(tempDir('coterie-private-refuse-').path);
      for (const cmd of ['tracker', 'peer'] as const) {
        // nobody's data directory, holding a file of root's that others may read: nobody cannot chmod it.
        const d = join(root, cmd);
        mkdirSync(d);
        writeFileSync(join(d, 'planted'), 'x');
        chmodSync(join(d, 'planted'), 0o644);
        chownSync(d, NOBODY, NOBODY);
        const args =
          cmd === 'tracker'
            ? ['tracker', '--port', '0', '--data-dir', d, '--log-level', 'warn']
            : ['peer', '--data-dir', d, '--tracker', 'http://127.0.0.1:1', '--no-shell'];
        const r = spawnSync('runuser', ['-u', 'nobody', '--', process.execPath, BIN, ...args], {
          encoding: 'utf8',
          timeout: 30_000,
        });
        expect(r.status, `${cmd}: ${r.stdout}${r.stderr}`).toBe(1);
        expect(r.stderr).toMatch(/planted is open to other users.*chmod go-rwx.*\[UNSAFE_PERMISSIONS\]/);
        expect(existsSync(join(d, cmd === 'tracker' ? 'tracker.db' : 'peer.db'))).toBe(false);
      }
    });
  },
);

/**
 * While bob's peer is logged in: every token-like string in a copy of his peer.db and its side
 * files is refused by the tracker's whoami. The control: the token sealed there, opened with
 * bob's session.key, is accepted.
 */
async function expectCopiedPeerDbLogsNoOneIn(url: string, bobDir: string, root: string): Promise<void> {
  const copy = join(root, 'stolen');
  mkdirSync(copy);
  let text = '';
  for (const f of ['peer.db', 'peer.db-wal', 'peer.db-shm']) {
    copyFileSync(join(bobDir, f), join(copy, f));
    text += `${readFileSync(join(copy, f)).toString('latin1')}\n`;
  }
  const candidates = [...new Set(text.match(/[A-Za-z0-9_-]{16,}/g) ?? [])];
  expect(candidates.length).toBeGreaterThan(0);
  const accepted: string[] = [];
  for (const token of candidates) {
    const r = await request(url, 'GET', '/v1/whoami', { token });
    if (r.status !== 401) accepted.push(`${token}: ${r.status}`);
  }
  expect(accepted).toEqual([]);

  const db = new Database(join(copy, 'peer.db'), { readonly: true });
  const raw = (db.prepare("SELECT value FROM meta WHERE key = 'session'").get() as { value: string }).value;
  db.close();
  const opened = new SessionSealer(bobDir).open(raw);
  if (opened.kind !== 'sealed') throw new Error(`bob's session is ${opened.kind}`);
  expect((await request(url, 'GET', '/v1/whoami', { token: opened.session.token })).status).toBe(200);
}
