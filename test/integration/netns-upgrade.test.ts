import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sample } from '../helpers/metrics.js';
import { natPair, skipWithoutNetns } from '../helpers/netns.js';
import { until } from '../helpers/wait.js';

// Issue 19: a download that started relayed moves to a punched path mid-transfer. Seeder and
// downloader sit behind port-restricted NATs (a pair that punches, see netns-nat.test.ts), but the
// seeder's router drops UDP between the two homes at first, so the punch fails and the download
// starts through the tracker's relay (held to --relay-rate so it lasts). Once pieces came through
// the relay the rule goes; the downloader's next upgrade attempt punches, the UDP link takes over
// and the relayed one is closed once it owes nothing. The downloader's byte counters show the
// relay going quiet, and the seeder's served-bytes counter shows no piece sent twice.

const skip = skipWithoutNetns('test/integration/netns-upgrade.test.ts');
const FILE_BYTES = 16 * 1024 * 1024;
const MiB = 1024 * 1024;

describe.skipIf(skip)('a relayed download upgrades to a punched path', { timeout: 180_000 }, () => {
  const p = natPair({
    scratchPrefix: 'coterie-netns-upgrade-',
    nsPrefix: 'upgr',
    fileBytes: FILE_BYTES,
    // UDP between the homes is dropped until the test deletes the table.
    dropUdpTable: 'upgr',
    trackerArgs: ['--relay-rate', '512KiB'],
  });
  const { dest, dirOf, run, json, counters } = p;
  const uploaded = () => {
    const info = JSON.parse(readFileSync(join(dirOf(p.seeder), 'daemon.json'), 'utf8')) as {
      control: { host: string; port: number };
      token: string;
    };
    const url = `http://${info.control.host}:${info.control.port}/metrics`;
    const text = p.lab
      .inNs(p.seeder.home, 'curl', '-sf', '-H', `authorization: Bearer ${info.token}`, url)
      .toString();
    return sample(text, 'coterie_peer_uploaded_bytes_total');
  };

  it('moves from the relay to UDP mid-transfer and fetches no piece twice', async () => {
    const { lab, seeder, downloader } = p;
    await until(
      'the seeder behind NAT, on the relay, with a UDP endpoint',
      () => {
        const s = json<{ reach?: { reachable: string; relay?: string; udp?: string } }>(seeder, 'status');
        return s.reach?.reachable === 'nat' && s.reach.relay !== undefined && s.reach.udp !== undefined;
      },
      30_000,
    );
    run(downloader, 'download_file', 'films', 'film.bin', dest);
    await until('2 MiB through the relay', () => (counters().relay ?? 0) >= 2 * MiB, 60_000);
    expect(counters().udp ?? 0).toBeLessThan(64 * 1024);
    lab.nft(seeder.router, 'delete table ip upgr');
    // The next attempt (1.5 s, 3 s, 6 s, then every 10 s by default) punches; the UDP link takes over.
    await until('the upgrade: 1 MiB over UDP', () => (counters().udp ?? 0) >= MiB, 60_000);
    const relayAtUpgrade = counters().relay ?? 0;
    await p.downloadCompleted(90_000);
    const end = counters();
    console.log(
      `upgrade: ${((end.relay ?? 0) / MiB).toFixed(1)} MiB through the relay (${(relayAtUpgrade / MiB).toFixed(1)} at the upgrade), ${((end.udp ?? 0) / MiB).toFixed(1)} MiB over UDP`,
    );
    // After the switch the relay carries at most what was in flight on it (a rate-limited link's
    // short pipeline), then nothing: the rest came over UDP.
    expect((end.relay ?? 0) - relayAtUpgrade).toBeLessThan(MiB);
    expect((end.relay ?? 0) + (end.udp ?? 0)).toBeGreaterThan(FILE_BYTES);
    expect(end.udp ?? 0).toBeGreaterThan(FILE_BYTES / 4);
    // The seeder served every byte once: no piece verified over the relay was fetched again.
    expect(uploaded()).toBe(FILE_BYTES);
  });
});
