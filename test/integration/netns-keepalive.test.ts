import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { natPair, skipWithoutNetns } from '../helpers/netns.js';
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
  const p = natPair({
    scratchPrefix: 'coterie-netns-keepalive-',
    nsPrefix: 'kpal',
    fileBytes: FILE_BYTES,
    // 4 Mbit/s out of the seeder's home: 12 MiB take about 25 s.
    seederMbit: 4,
  });
  const { dest, dirOf, run, json, counters } = p;
  const downloaderLog = () => readFileSync(join(dirOf(p.downloader), 'peer.log'), 'utf8');

  it('finds the silent path by its keepalive and completes through the relay', async () => {
    const { lab, seeder, downloader } = p;
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
    await p.downloadCompleted(120_000);
    const end = counters();
    console.log(
      `keepalive: ${((end.udp ?? 0) / MiB).toFixed(1)} MiB over UDP, ${((end.relay ?? 0) / MiB).toFixed(1)} MiB through the relay after the path went silent`,
    );
    // The rest came through the relay: the punched path carried nothing more.
    expect(end.udp ?? 0).toBe(udpAtDetection);
    expect(end.relay ?? 0).toBeGreaterThan(MiB);
  });
});
