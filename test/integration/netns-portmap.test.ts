import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomFile } from '../helpers/cli-harness.js';
import { type Home, NetnsLab, type Started, skipWithoutNetns } from '../helpers/netns.js';
import { tempDir } from '../helpers/temp-dir.js';
import { until } from '../helpers/wait.js';

// Issue 19, part 3: port mapping against a real miniupnpd (Debian's, nftables backend) in the
// router namespaces of the NAT lab (test/helpers/netns.ts). Two homes have a UPnP router, one
// speaking PCP and NAT-PMP too (PCP is the peer's first choice) and one UPnP IGD only; their routers otherwise
// let in only replies, so without a mapping their peers would be relayed (netns-nat.test.ts).
// A third home, port-restricted, downloads from both: the bytes come straight from the routers'
// mapped addresses. The mappings are made within 2 s, renewed before their lease ends, and gone
// from miniupnpd's lease file and nftables rules after the peers' SIGTERM.

const skip = skipWithoutNetns('test/integration/netns-portmap.test.ts', ['ip', 'nft', 'tc', 'miniupnpd']);
const FILE_BYTES = 1024 * 1024 + 33;
/** The PCP peer's lease: short, so the test sees it renewed several times. */
const LEASE_SEC = 4;

interface Seeder {
  name: string;
  home: Home;
  dir: string;
  peer: Started;
  miniupnpd: Started & { leases: string };
  protocol: 'pcp' | 'upnp';
}

interface MappingView {
  protocol: string;
  external: string;
  internal: string;
  leaseSec: number;
  expiresAt: number;
  renewals: number;
}
interface ReachView {
  reachable: string;
  address?: string;
  relay?: string;
  mapping?: MappingView;
}

/** miniupnpd's lease file: `TCP:ext:client:int:expiry:description` per mapping. */
function leases(path: string): Array<{ port: number; client: string; expiry: number }> {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('TCP:'))
    .map((l) => {
      const [, ext, client, , expiry] = l.split(':');
      return { port: Number(ext), client: client!, expiry: Number(expiry) };
    });
}

describe.skipIf(skip)('port mapping with miniupnpd (UPnP IGD and PCP)', { timeout: 180_000 }, () => {
  const scratch = tempDir('coterie-portmap-');
  let lab: NetnsLab;
  const seeders: Seeder[] = [];
  let downloader: { ns: string; dir: string };
  const run = (ns: string, dir: string, ...args: string[]) => lab.coterie(ns, ['--data-dir', dir, ...args]);
  const reachOf = (s: Seeder) =>
    (JSON.parse(run(s.home.home, s.dir, '--json', 'status')) as { reach?: ReachView }).reach;
  const madeMs = (s: Seeder) => {
    const line = readFileSync(join(s.dir, 'peer.log'), 'utf8')
      .split('\n')
      .find((l) => l.includes('"port mapping made"'));
    return line === undefined
      ? undefined
      : (JSON.parse(line) as { ms: number; loadedMs: number; protocol: string });
  };

  /** The peer's log lines about port mapping (a failure says why). */
  const mappingLog = (s: Seeder) =>
    readFileSync(join(s.dir, 'peer.log'), 'utf8')
      .split('\n')
      .filter((l) => l.includes('mapping') || l.includes('UPnP'))
      .join('\n');

  beforeAll(async () => {
    lab = new NetnsLab('portmap');
    try {
      const homes = [lab.addHome('upnp'), lab.addHome('upnp'), lab.addHome('restricted')];
      const tracker = await lab.startTracker(join(scratch.path, 'tracker'));
      for (const [i, protocol] of (['pcp', 'upnp'] as const).entries()) {
        const home = homes[i]!;
        const name = `seeder${i + 1}`;
        const dir = join(scratch.path, name);
        const miniupnpd = await lab.startMiniupnpd(home, join(scratch.path, `r${i + 1}`), {
          natpmp: protocol === 'pcp', // miniupnpd's NAT-PMP and PCP are one switch
        });
        const peer = await lab.startMember(home.home, {
          name,
          address: home.lan,
          dataDir: dir,
          tracker,
          extra: ['--port-mapping-lease', String(LEASE_SEC), '--log-level', 'debug'],
        });
        seeders.push({ name, home, dir, peer, miniupnpd, protocol });
      }
      const dHome = homes[2]!;
      downloader = { ns: dHome.home, dir: join(scratch.path, 'downloader') };
      await lab.startMember(dHome.home, {
        name: 'downloader',
        address: dHome.lan,
        dataDir: downloader.dir,
        tracker,
        extra: ['--no-port-mapping'],
      });
      run(seeders[0]!.home.home, seeders[0]!.dir, 'create_group', 'mapped');
      for (const m of [seeders[1]!, { home: dHome, dir: downloader.dir, name: 'downloader' }]) {
        run(m.home.home, m.dir, 'join_group', 'mapped');
        run(seeders[0]!.home.home, seeders[0]!.dir, 'accept_request', 'mapped', m.name);
      }
      for (const s of seeders) {
        await randomFile(join(scratch.path, `${s.name}.bin`), FILE_BYTES);
        run(s.home.home, s.dir, 'upload_file', join(scratch.path, `${s.name}.bin`), 'mapped');
      }
      lab.addCounters(downloader.ns, {
        relay: 'ip saddr 198.18.0.1 tcp sport 7072',
        ...Object.fromEntries(seeders.map((s) => [s.name, `ip saddr ${s.home.wan}`])),
      });
    } catch (err) {
      lab.cleanUp();
      throw err;
    }
  }, 150_000);

  afterAll(() => {
    const made = lab?.name('');
    lab?.cleanUp();
    scratch.remove();
    if (made !== undefined) expect(lab.leftOver(), `namespaces ${made}* left behind`).toEqual([]);
  });

  it('each peer maps its serving port within 2 s, by PCP where the router speaks it, else UPnP', async () => {
    for (const s of seeders) {
      // The rule as it first appeared: a 4 s PCP lease is renewed while `status` runs below,
      // and a listing taken then raced the renewal (the rule's continuity is the renewal case's).
      let rules: string[] = [];
      await until(
        `${s.name}'s mapping in miniupnpd`,
        () => {
          rules = lab.upnpRules(s.home);
          return rules.length === 1;
        },
        10_000,
      ).catch((err: Error) => {
        throw new Error(
          `${err.message}; its log: ${mappingLog(s)}; miniupnpd: ${s.miniupnpd.out.slice(-2000)}`,
        );
      });
      const made = madeMs(s);
      console.log(
        `${s.name}: mapped by ${made?.protocol} in ${made?.ms} ms (${made?.loadedMs} ms loading the library)`,
      );
      expect(made?.protocol, s.name).toBe(s.protocol);
      // The protocols' time, from the library loaded (the daemon loads it while its piece server starts;
      // on a loaded machine the module graph alone took up to 0.9 s) to the router's answer.
      expect(
        made!.ms - made!.loadedMs,
        `${s.name}: ms from asking the router to the mapping made`,
      ).toBeLessThan(2_000);
      const reach = reachOf(s);
      const port = Number(reach!.mapping!.internal.split(':')[1]);
      expect(reach?.mapping).toMatchObject({
        protocol: s.protocol,
        external: `${s.home.wan}:${port}`,
        internal: `${s.home.lan}:${port}`,
        leaseSec: s.protocol === 'pcp' ? LEASE_SEC : 3_600,
      });
      expect(rules[0]).toContain(`dnat ip to ${s.home.lan}:${port}`);
      expect(leases(s.miniupnpd.leases).map((l) => [l.port, l.client])).toEqual([[port, s.home.lan]]);
      // What `status` prints for people.
      expect(run(s.home.home, s.dir, 'status')).toMatch(
        new RegExp(`port mapping: ${s.home.wan}:${port} → ${s.home.lan}:${port} by (PCP|UPnP)`),
      );
    }
  });

  it('the tracker dials back the mapped address and says direct there', async () => {
    for (const s of seeders) {
      let reach: ReachView | undefined;
      await until(
        `${s.name} direct at its mapping`,
        () => {
          reach = reachOf(s);
          return reach?.reachable === 'direct' && reach.address === reach.mapping?.external;
        },
        30_000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}: last ${JSON.stringify(reach)}`);
      });
      expect(reach!.address!.startsWith(`${s.home.wan}:`)).toBe(true);
      expect(reach!.relay).toBeUndefined();
    }
  });

  it(`renews the ${LEASE_SEC} s PCP lease before it ends: the rule never goes`, async () => {
    const s = seeders.find((x) => x.protocol === 'pcp')!;
    const first = reachOf(s)!.mapping!;
    const firstLease = leases(s.miniupnpd.leases)[0]!;
    // Three leases' worth, sampled: the router's DNAT rule is there at every look. miniupnpd
    // renews a PCP mapping by deleting its rule and adding it again ("already redirected …,
    // replacing"), so a listing can fall between the two (a .ci/run saw no rule at the 4th look):
    // an empty listing is looked at again before it counts. A lapsed lease stays empty until the
    // next renewal, seconds later, and still fails.
    const rulesNow = async () => {
      for (let again = 0; ; again++) {
        const rules = lab.upnpRules(s.home);
        if (rules.length > 0 || again === 4) return rules;
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const until3 = Date.now() + 3 * LEASE_SEC * 1000;
    let looks = 0;
    while (Date.now() < until3) {
      expect(await rulesNow(), `the mapping after ${looks} looks`).toHaveLength(1);
      looks++;
      await new Promise((r) => setTimeout(r, 250));
    }
    const later = reachOf(s)!.mapping!;
    expect(later.renewals).toBeGreaterThanOrEqual(first.renewals + 2);
    expect(later.expiresAt).toBeGreaterThan(first.expiresAt);
    expect(leases(s.miniupnpd.leases)[0]!.expiry).toBeGreaterThan(firstLease.expiry);
    expect(readFileSync(join(s.dir, 'peer.log'), 'utf8')).toContain('"port mapping renewed"');
  });

  it('a peer in another home downloads from both straight through the mappings', async () => {
    for (const s of seeders) {
      run(
        downloader.ns,
        downloader.dir,
        'download_file',
        'mapped',
        `${s.name}.bin`,
        join(scratch.path, `got-${s.name}`),
      );
    }
    await until(
      'downloads completed',
      () => {
        const { downloads } = JSON.parse(run(downloader.ns, downloader.dir, '--json', 'show_downloads')) as {
          downloads: Array<{ fileName: string; state: string; error: string | null }>;
        };
        const failed = downloads.find((x) => x.state === 'failed');
        if (failed) throw new Error(`${failed.fileName} failed: ${failed.error}`);
        return downloads.length === 2 && downloads.every((x) => x.state === 'completed');
      },
      60_000,
      500,
    );
    const bytes = lab.readCounters(downloader.ns);
    const paths: Record<string, string> = {};
    for (const s of seeders) {
      expect(
        readFileSync(join(scratch.path, `got-${s.name}`)).equals(
          readFileSync(join(scratch.path, `${s.name}.bin`)),
        ),
      ).toBe(true);
      paths[s.name] = (bytes[s.name] ?? 0) >= FILE_BYTES ? 'mapped' : 'relayed';
    }
    console.log(`port mapping paths (seeder → downloader): ${JSON.stringify(paths)}`);
    expect(paths).toEqual({ seeder1: 'mapped', seeder2: 'mapped' });
    expect(bytes.relay ?? 0).toBeLessThan(FILE_BYTES);
  });

  it("removes the mapping at the peer's SIGTERM: no lease and no rule left in miniupnpd", async () => {
    for (const s of seeders) {
      expect(lab.upnpRules(s.home)).toHaveLength(1);
      const exited = new Promise<number | null>((r) => s.peer.child.once('exit', (code) => r(code)));
      // `ip netns exec` execs the peer: the child is the peer process itself.
      s.peer.child.kill('SIGTERM');
      await Promise.race([
        exited,
        new Promise((_, reject) => setTimeout(() => reject(new Error(`${s.name} did not stop`)), 20_000)),
      ]);
      expect(readFileSync(join(s.dir, 'peer.log'), 'utf8')).toContain('"port mapping removed"');
      expect(lab.upnpRules(s.home), `${s.name}'s rules after SIGTERM`).toEqual([]);
      expect(leases(s.miniupnpd.leases), `${s.name}'s leases after SIGTERM`).toEqual([]);
      // miniupnpd is alive: the rules went because the peer asked, not because the router stopped.
      expect(s.miniupnpd.child.exitCode).toBeNull();
    }
  });
});
