import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, randomFile, until } from '../helpers/cli-harness.js';
import { tempDir } from '../helpers/temp-dir.js';

// Issue 19's real case in network namespaces: two homes (10.1.0.0/24, 10.2.0.0/24), each behind
// its own router namespace doing NAT (nftables masquerade), on a "public" network in
// 198.18.0.0/15 where the tracker and its relay run. A peer in each home: neither can dial the
// other, the tracker cannot dial either back, so the file goes through the relay. Everything
// lives in namespaces this test makes (uniquely named) and removes, with their processes, even
// when a step fails; no route leads out of them.

const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const root = process.getuid?.() === 0;
const missing = !root
  ? 'not root'
  : !have('ip')
    ? 'no ip (iproute2)'
    : !have('nft')
      ? 'no nft (nftables)'
      : '';
if (missing !== '') {
  console.warn(
    `SKIPPED test/integration/netns-nat.test.ts: network namespaces need root, ip and nft (${missing})`,
  );
}

const TRACKER = 'https://198.18.0.1:7070';

describe.skipIf(missing !== '')(
  'two homes behind NAT share a file through the relay',
  { timeout: 150_000 },
  () => {
    const id = randomBytes(3).toString('hex');
    const ns = {
      pub: `c19pub-${id}`,
      r1: `c19r1-${id}`,
      r2: `c19r2-${id}`,
      h1: `c19h1-${id}`,
      h2: `c19h2-${id}`,
    };
    const scratch = tempDir('coterie-netns-');
    const dirOf = (n: string) => join(scratch.path, n);
    const children: ChildProcess[] = [];
    const file = join(scratch.path, 'files', 'photos.bin');

    const sh = (...args: string[]) =>
      execFileSync(args[0]!, args.slice(1), { stdio: 'pipe', timeout: 10_000 });
    const inNs = (n: string, ...args: string[]) => sh('ip', 'netns', 'exec', n, ...args);

    /** Runs `coterie …` inside a namespace (the daemon's control API is on that namespace's loopback). */
    const coterie = (n: string, args: string[], input?: string) => {
      const r = spawnSync('ip', ['netns', 'exec', n, process.execPath, BIN, ...args], {
        input: input ?? '',
        encoding: 'utf8',
        timeout: 30_000,
      });
      if (r.status !== 0) throw new Error(`coterie ${args.join(' ')} in ${n}: ${r.stderr}`);
      return r.stdout;
    };
    const json = <T>(n: string, dataDir: string, ...args: string[]) =>
      JSON.parse(coterie(n, ['--data-dir', dataDir, '--json', ...args])) as T;

    const daemon = async (n: string, args: string[], ready: RegExp, log: string) => {
      const child = spawn('ip', ['netns', 'exec', n, process.execPath, BIN, ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
      });
      child.stderr!.on('data', (d: Buffer) => {
        out += d.toString();
      });
      await until(
        `${log} started`,
        () => {
          if (child.exitCode !== null) throw new Error(`${log} exited: ${out}`);
          return ready.test(out);
        },
        60_000,
      );
      return out;
    };

    /** Removes what the test made, whatever state it is in: processes, namespaces (their veths go with them). */
    const cleanUp = () => {
      for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
      for (const n of Object.values(ns)) {
        const pids = spawnSync('ip', ['netns', 'pids', n], { encoding: 'utf8' }).stdout ?? '';
        for (const pid of pids.split('\n').filter((p) => /^\d+$/.test(p))) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            // gone already
          }
        }
        spawnSync('ip', ['netns', 'del', n]);
      }
    };

    beforeAll(async () => {
      try {
        for (const n of Object.values(ns)) {
          sh('ip', 'netns', 'add', n);
          inNs(n, 'ip', 'link', 'set', 'lo', 'up');
        }
        // The public side: the tracker's address on the public namespace's loopback, a link to each router.
        inNs(ns.pub, 'ip', 'addr', 'add', '198.18.0.1/32', 'dev', 'lo');
        for (const [i, router, home] of [
          [1, ns.r1, ns.h1],
          [2, ns.r2, ns.h2],
        ] as const) {
          const wan = `c19w${i}-${id}`;
          const up = `c19u${i}-${id}`;
          sh('ip', 'link', 'add', wan, 'netns', ns.pub, 'type', 'veth', 'peer', 'name', up, 'netns', router);
          inNs(ns.pub, 'ip', 'addr', 'add', `198.18.${i}.1/24`, 'dev', wan);
          inNs(ns.pub, 'ip', 'link', 'set', wan, 'up');
          inNs(router, 'ip', 'addr', 'add', `198.18.${i}.2/24`, 'dev', up);
          inNs(router, 'ip', 'link', 'set', up, 'up');
          inNs(router, 'ip', 'route', 'add', 'default', 'via', `198.18.${i}.1`);
          const lan = `c19l${i}-${id}`;
          const host = `c19e${i}-${id}`;
          sh('ip', 'link', 'add', lan, 'netns', router, 'type', 'veth', 'peer', 'name', host, 'netns', home);
          inNs(router, 'ip', 'addr', 'add', `10.${i}.0.1/24`, 'dev', lan);
          inNs(router, 'ip', 'link', 'set', lan, 'up');
          inNs(home, 'ip', 'addr', 'add', `10.${i}.0.2/24`, 'dev', host);
          inNs(home, 'ip', 'link', 'set', host, 'up');
          inNs(home, 'ip', 'route', 'add', 'default', 'via', `10.${i}.0.1`);
          inNs(router, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
          // The home router: masquerade what leaves for the public side; nothing comes in unasked.
          inNs(
            router,
            'nft',
            `add table ip nat; add chain ip nat postrouting_home { type nat hook postrouting priority 100; }; add rule ip nat postrouting_home oifname "${up}" masquerade; ` +
              `add table ip filter; add chain ip filter forward_home { type filter hook forward priority 0; policy drop; }; ` +
              `add rule ip filter forward_home ct state established,related accept; add rule ip filter forward_home iifname "${lan}" accept`,
          );
        }
        await randomFile(file, 4 * 1024 * 1024 + 77);
        mkdirSync(dirOf('dl'), { recursive: true });
        const trackerOut = await daemon(
          ns.pub,
          [
            'tracker',
            '--host',
            '0.0.0.0',
            '--port',
            '7070',
            '--public-url',
            TRACKER,
            '--relay-port',
            '7072',
            '--relay-public-host',
            '198.18.0.1',
            '--data-dir',
            dirOf('tracker'),
            '--scrypt-log-n',
            '10',
            '--log-level',
            'warn',
          ],
          /listening on/,
          'tracker',
        );
        // Its self-signed certificate's fingerprint, as a peer is given it: the URL with #sha256=.
        const pinned = `${TRACKER}#sha256=${/#sha256=([0-9a-f]{64})/.exec(trackerOut)![1]}`;
        for (const [n, home, addr] of [
          ['alice', ns.h1, '10.1.0.2'],
          ['bob', ns.h2, '10.2.0.2'],
        ] as const) {
          await daemon(
            home,
            [
              'peer',
              '--data-dir',
              dirOf(n),
              '--tracker',
              pinned,
              '--no-shell',
              '--no-ui',
              '--host',
              '0.0.0.0',
              '--advertise',
              addr,
            ],
            /serving on/,
            n,
          );
          coterie(home, ['--data-dir', dirOf(n), 'create_user', n, '-'], `${n}-password\n`);
          coterie(home, ['--data-dir', dirOf(n), 'login', n, `${n}-password`]);
        }
      } catch (err) {
        cleanUp();
        throw err;
      }
    }, 120_000);

    afterAll(() => {
      cleanUp();
      scratch.remove();
    });

    it('the tracker finds both peers behind NAT; they hold reservations on its relay', async () => {
      for (const [n, home] of [
        ['alice', ns.h1],
        ['bob', ns.h2],
      ] as const) {
        await until(
          `${n} reserved on the relay`,
          () => {
            const s = json<{ reach?: { reachable: string; relay?: string } }>(home, dirOf(n), 'status');
            return s.reach?.reachable === 'nat' && s.reach.relay === '198.18.0.1:7072';
          },
          30_000,
        );
      }
      // And indeed nobody reaches alice's piece server directly: not bob's home, not the public side.
      const { serving } = json<{ serving: { port: number } }>(ns.h1, dirOf('alice'), 'status');
      const probe = `require('net').connect(${serving.port}, '10.1.0.2').on('error', () => process.exit(3)).on('connect', () => process.exit(0)); setTimeout(() => process.exit(4), 3000)`;
      for (const from of [ns.h2, ns.pub]) {
        const direct = spawnSync('ip', ['netns', 'exec', from, process.execPath, '-e', probe], {
          timeout: 10_000,
        });
        expect(direct.status, `a direct connection from ${from}`).not.toBe(0);
      }
    });

    it("bob downloads alice's file through the relay, byte-identical", async () => {
      coterie(ns.h1, ['--data-dir', dirOf('alice'), 'create_group', 'family']);
      coterie(ns.h2, ['--data-dir', dirOf('bob'), 'join_group', 'family']);
      coterie(ns.h1, ['--data-dir', dirOf('alice'), 'accept_request', 'family', 'bob']);
      coterie(ns.h1, ['--data-dir', dirOf('alice'), 'upload_file', file, 'family']);
      const dest = join(dirOf('dl'), 'photos.bin');
      coterie(ns.h2, ['--data-dir', dirOf('bob'), 'download_file', 'family', 'photos.bin', dest]);
      await until(
        'the download completed',
        () => {
          const { downloads } = json<{ downloads: Array<{ state: string; error: string | null }> }>(
            ns.h2,
            dirOf('bob'),
            'show_downloads',
          );
          if (downloads[0]?.state === 'failed') throw new Error(`download failed: ${downloads[0].error}`);
          return downloads[0]?.state === 'completed';
        },
        60_000,
      );
      expect(readFileSync(dest).equals(readFileSync(file))).toBe(true);
    });
  },
);
