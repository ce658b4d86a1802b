import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomFile } from '../helpers/cli-harness.js';
import { type Home, NetnsLab, skipWithoutNetns } from '../helpers/netns.js';
import { tempDir } from '../helpers/temp-dir.js';
import { until } from '../helpers/wait.js';

// Issue 19: a punched download whose path goes silent. Seeder and downloader sit behind
// port-restricted NATs (a pair that punches, see netns-nat.test.ts), the seeder's uplink shaped
// so the download lasts. Once pieces came over the punched UDP stream, the seeder's router starts
// dropping UDP between the homes without a word (as a router that lost its mapping does). The
// downloader's keepalive finds the path silent, the link is dialled again, the punch fails, and
// the rest comes through the tracker's relay. Without the pings the UDP stream would sit quiet
// until the wire's idle timeout: the assertion is on the detection's reason, not on a time.

const skip = skipWithoutNetns('test/integration/netns-keepalive.test.ts');
const FILE_BYTES = 12 * 1024 * 1024;
const MiB = 1024 * 1024;

describe.skipIf(skip)('a punched download whose path goes silent', { timeout: 180_000 }, () => {
  const scratch = tempDir('coterie-netns-keepalive-');
  let lab: NetnsLab;
  let seeder: Home;
  let downloader: Home;
  const file = join(scratch.path, 'files', 'film.bin');
  const dest = join(scratch.path, 'dl', 'film.bin');
  const dirOf = (h: Home) => join(scratch.path, h === seeder ? 'alice' : 'bob');
  const run = (h: Home, ...args: string[]) => lab.coterie(h.home, ['--data-dir', dirOf(h), ...args]);
  const json = <T>(h: Home, ...args: string[]) => JSON.parse(run(h, '--json', ...args)) as T;
  const counters = () => lab.readCounters(downloader.home);
  const downloaderLog = () => readFileSync(join(dirOf(downloader), 'peer.log'), 'utf8');

  beforeAll(async () => {
    lab = new NetnsLab(process.env.COTERIE_NETNS_PREFIX ?? 'kpal');
    try {
      // 4 Mbit/s out of the seeder's home: 12 MiB take about 25 s.
      seeder = lab.addHome('restricted', 4);
      downloader = lab.addHome('restricted');
      const tracker = await lab.startTracker(join(scratch.path, 'tracker'));
      await Promise.all(
        [
          { h: seeder, name: 'alice' },
          { h: downloader, name: 'bob' },
        ].map(({ h, name }) => lab.startMember(h.home, { name, address: h.lan, dataDir: dirOf(h), tracker })),
      );
      run(seeder, 'create_group', 'films');
      run(downloader, 'join_group', 'films');
      run(seeder, 'accept_request', 'films', 'bob');
      await randomFile(file, FILE_BYTES);
      run(seeder, 'upload_file', file, 'films');
      mkdirSync(join(scratch.path, 'dl'), { recursive: true });
      lab.addCounters(downloader.home, {
        relay: 'ip saddr 198.18.0.1 tcp sport 7072',
        udp: `ip saddr ${seeder.wan} meta l4proto udp`,
      });
    } catch (err) {
      lab.cleanUp();
      throw err;
    }
  }, 120_000);

  afterAll(() => {
    const made = lab?.name('');
    lab?.cleanUp();
    scratch.remove();
    if (made !== undefined) expect(lab.leftOver(), `namespaces ${made}* left behind`).toEqual([]);
  });

  it('finds the silent path by its keepalive and completes through the relay', async () => {
    await until(
      'both peers behind NAT with a UDP endpoint',
      () =>
        [seeder, downloader].every((h) => {
          const s = json<{ reach?: { reachable: string; udp?: string } }>(h, 'status');
          return s.reach?.reachable === 'nat' && s.reach.udp !== undefined;
        }),
      30_000,
    );
    run(downloader, 'download_file', 'films', 'film.bin', dest);
    await until('1 MiB over the punched path', () => (counters().udp ?? 0) >= MiB, 60_000);
    expect(counters().relay ?? 0).toBeLessThan(256 * 1024);
    // The seeder's router drops UDP between the homes from now on: no reset, no ICMP.
    lab.dropUdp(seeder.router, downloader.wan, 'kpal');
    await until(
      'the keepalive finds the path silent',
      () => /path silent/.test(downloaderLog()),
      30_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; the downloader's log: ${downloaderLog().slice(-4000)}`);
    });
    const udpAtDetection = counters().udp ?? 0;
    await until(
      'the download completed',
      () => {
        const { downloads } = json<{ downloads: Array<{ state: string; error: string | null }> }>(
          downloader,
          'show_downloads',
        );
        if (downloads[0]?.state === 'failed') throw new Error(`download failed: ${downloads[0].error}`);
        return downloads[0]?.state === 'completed';
      },
      120_000,
      500,
    );
    expect(readFileSync(dest).equals(readFileSync(file))).toBe(true);
    const end = counters();
    console.log(
      `keepalive: ${((end.udp ?? 0) / MiB).toFixed(1)} MiB over UDP, ${((end.relay ?? 0) / MiB).toFixed(1)} MiB through the relay after the path went silent`,
    );
    // The rest came through the relay: the punched path carried nothing more.
    expect(end.udp ?? 0).toBe(udpAtDetection);
    expect(end.relay ?? 0).toBeGreaterThan(MiB);
  });
});
