import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomFile } from '../helpers/cli-harness.js';
import { type Home, type NatType, NetnsLab, PUBLIC_PEER, skipWithoutNetns } from '../helpers/netns.js';
import { tempDir } from '../helpers/temp-dir.js';
import { until } from '../helpers/wait.js';

// Issue 19's NAT matrix in network namespaces (test/helpers/netns.ts): a public network with the
// tracker, its relay and one public peer, and homes behind routers doing full-cone,
// port-restricted and symmetric NAT, uplinks shaped to 100 Mbit/s. For every ordered pair
// (seeder's network, downloader's network) the downloader fetches a file only that seeder has,
// and the path it took is read off the downloader's own byte counters: TCP bytes from the seeder's
// public address (direct), UDP bytes from it (punched: a UDX stream over a hole both sides
// opened), or bytes from the relay (relayed).

const skip = skipWithoutNetns('test/integration/netns-nat.test.ts');

type Net = 'public' | Exclude<NatType, 'upnp'>;
type Path = 'direct' | 'mapped' | 'punched' | 'relayed';
const NETS: Net[] = ['public', 'fullcone', 'restricted', 'symmetric'];

/**
 * The path each pair takes, seeder's network → downloader's network. A seeder the tracker can
 * dial back is dialled directly (a full-cone router forwards to it); one it cannot is punched to
 * over UDP where the two NATs allow it, else reached through the relay. Punching needs one side
 * to learn where the other's datagrams come from: a port-restricted seeder keeps the port its
 * reflector saw, so any downloader but a symmetric one gets through; a symmetric seeder's probes
 * come from a new port, which a downloader that lets them in (public, full-cone) answers, and a
 * restricted or symmetric one never sees.
 */
const EXPECTED: Record<Net, Partial<Record<Net, Path>>> = {
  public: { fullcone: 'direct', restricted: 'direct', symmetric: 'direct' },
  fullcone: { public: 'direct', fullcone: 'direct', restricted: 'direct', symmetric: 'direct' },
  restricted: { public: 'punched', fullcone: 'punched', restricted: 'punched', symmetric: 'relayed' },
  symmetric: { public: 'punched', fullcone: 'punched', restricted: 'relayed', symmetric: 'relayed' },
};
const PAIRS = NETS.flatMap((s) =>
  NETS.filter((d) => EXPECTED[s][d] !== undefined).map((d) => [s, d] as const),
);
const FILE_BYTES = 1024 * 1024 + 77;

interface Member {
  name: string;
  ns: string;
  dir: string;
  /** Its address as others see it (the router's for a home). */
  seen: string;
  /** The address it advertises (its own). */
  address: string;
}

describe.skipIf(skip)('the NAT matrix: every pair of networks shares a file', { timeout: 240_000 }, () => {
  const scratch = tempDir('coterie-netns-');
  let lab: NetnsLab;
  /** Seeders sit in one home of each type, downloaders in another, so two of a type make a pair too. */
  const seeders = new Map<Net, Member>();
  const downloaders = new Map<Net, Member>();
  const fileOf = (s: Net, d: Net) => join(scratch.path, 'files', `${s}-to-${d}.bin`);
  const destOf = (s: Net, d: Net) => join(scratch.path, 'dl', `${s}-to-${d}.bin`);
  const json = <T>(m: Member, ...args: string[]) =>
    JSON.parse(lab.coterie(m.ns, ['--data-dir', m.dir, '--json', ...args])) as T;
  const run = (m: Member, ...args: string[]) => lab.coterie(m.ns, ['--data-dir', m.dir, ...args]);

  beforeAll(async () => {
    lab = new NetnsLab(process.env.COTERIE_NETNS_PREFIX);
    try {
      const homes = new Map<string, Home>();
      for (const type of ['fullcone', 'restricted', 'symmetric'] as const) {
        homes.set(`${type}-s`, lab.addHome(type));
        homes.set(`${type}-d`, lab.addHome(type));
      }
      const tracker = await lab.startTracker(join(scratch.path, 'tracker'));
      const publicPeer: Member = {
        name: 'pub',
        ns: lab.pubPeer,
        dir: join(scratch.path, 'pub'),
        seen: PUBLIC_PEER,
        address: PUBLIC_PEER,
      };
      seeders.set('public', publicPeer);
      downloaders.set('public', publicPeer);
      const everyone = [publicPeer];
      for (const [key, h] of homes) {
        const m: Member = {
          name: key.replace('-', ''),
          ns: h.home,
          dir: join(scratch.path, key),
          seen: h.wan,
          address: h.lan,
        };
        (key.endsWith('-s') ? seeders : downloaders).set(h.type as Net, m);
        everyone.push(m);
      }
      // Two at a time: a peer start is about a CPU-second, and the launcher waits 60 s at most.
      for (let i = 0; i < everyone.length; i += 2) {
        await Promise.all(
          everyone
            .slice(i, i + 2)
            .map((m) => lab.startMember(m.ns, { name: m.name, address: m.address, dataDir: m.dir, tracker })),
        );
      }
      run(publicPeer, 'create_group', 'matrix');
      for (const m of everyone.slice(1)) {
        run(m, 'join_group', 'matrix');
        run(publicPeer, 'accept_request', 'matrix', m.name);
      }
      mkdirSync(join(scratch.path, 'dl'), { recursive: true });
      for (const [s, d] of PAIRS) {
        await randomFile(fileOf(s, d), FILE_BYTES);
        run(seeders.get(s)!, 'upload_file', fileOf(s, d), 'matrix');
      }
      // Each downloader counts what it receives from each seeder's public address and from the relay.
      for (const [d, m] of downloaders) {
        lab.addCounters(m.ns, {
          relay: `ip saddr 198.18.0.1 tcp sport 7072`,
          ...Object.fromEntries(
            NETS.filter((s) => EXPECTED[s][d] !== undefined).flatMap((s) => [
              [s, `ip saddr ${seeders.get(s)!.seen} meta l4proto tcp`],
              [`${s}-udp`, `ip saddr ${seeders.get(s)!.seen} meta l4proto udp`],
            ]),
          ),
        });
      }
    } catch (err) {
      lab.cleanUp();
      throw err;
    }
  }, 200_000);

  afterAll(() => {
    const made = lab?.name('');
    lab?.cleanUp();
    scratch.remove();
    if (made !== undefined) expect(lab.leftOver(), `namespaces ${made}* left behind`).toEqual([]);
  });

  it('the tracker finds the full-cone seeder directly and the others behind NAT, reserved on its relay', async () => {
    for (const [net, m] of seeders) {
      let s: { reach?: { reachable: string; address?: string; relay?: string } } = {};
      const expected = () =>
        net === 'public' || net === 'fullcone'
          ? s.reach?.reachable === 'direct' && s.reach.address?.startsWith(`${m.seen}:`) === true
          : s.reach?.reachable === 'nat' && s.reach.relay === '198.18.0.1:7072';
      await until(
        `${net} seeder's reachability`,
        () => {
          s = json<typeof s>(m, 'status');
          return expected();
        },
        30_000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}: last ${JSON.stringify(s.reach)}`);
      });
    }
  });

  it('every pair downloads byte-identical files by the expected path', async () => {
    for (const [s, d] of PAIRS)
      run(downloaders.get(d)!, 'download_file', 'matrix', `${s}-to-${d}.bin`, destOf(s, d));
    for (const [d, m] of downloaders) {
      await until(
        `${d}'s downloads completed`,
        () => {
          const { downloads } = json<{
            downloads: Array<{ fileName: string; state: string; error: string | null }>;
          }>(m, 'show_downloads');
          const failed = downloads.find((x) => x.state === 'failed');
          if (failed) throw new Error(`${d}: ${failed.fileName} failed: ${failed.error}`);
          return downloads.length > 0 && downloads.every((x) => x.state === 'completed');
        },
        90_000,
        500,
      );
    }
    const paths: Record<string, Partial<Record<Net, Path>>> = {};
    for (const [d, m] of downloaders) {
      const bytes = lab.readCounters(m.ns);
      let relayed = 0;
      for (const s of NETS.filter((x) => EXPECTED[x][d] !== undefined)) {
        expect(readFileSync(destOf(s, d)).equals(readFileSync(fileOf(s, d))), `${s} → ${d}`).toBe(true);
        const path: Path =
          (bytes[s] ?? 0) >= FILE_BYTES
            ? 'direct'
            : (bytes[`${s}-udp`] ?? 0) >= FILE_BYTES
              ? 'punched'
              : 'relayed';
        if (path === 'relayed') relayed++;
        paths[s] = { ...paths[s], [d]: path };
      }
      // What did not come from the seeders came through the relay, TLS records and all.
      expect(bytes.relay ?? 0, `bytes ${d} received from the relay`).toBeGreaterThanOrEqual(
        relayed * FILE_BYTES,
      );
    }
    console.log(`NAT matrix (seeder → downloader): ${JSON.stringify(paths)}`);
    expect(paths).toEqual(EXPECTED);
  });
});
