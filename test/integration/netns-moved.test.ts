import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Home, natPair, skipWithoutNetns } from '../helpers/netns.js';
import { until } from '../helpers/wait.js';

// Issue 19: a seeder's public UDP endpoint moves mid-download, and the downloader punches to the
// new one as soon as the tracker says so (peer_moved), not at a listing a running download never
// makes. Seeder and downloader sit behind port-restricted NATs; UDP between the homes is dropped
// at first, so the download starts through the tracker's relay. Then the seeder's router maps its
// UDP from another port (a new snat rule, its UDP conntrack entries flushed: the mapping a reboot
// or a timeout gives) and stops dropping. Punches to the old endpoint can never work again; the
// seeder's next reflection sees the new one, its addresses update reaches the downloader as
// peer_moved, and the attempt made at once punches through. The downloader's log says in which
// order: the move, then the upgrade. Without peer_moved the download never leaves the relay.

const skip = skipWithoutNetns('test/integration/netns-moved.test.ts', ['ip', 'nft', 'tc', 'conntrack']);
const FILE_BYTES = 24 * 1024 * 1024;
const MiB = 1024 * 1024;
const NEW_PORT = 45_123;

describe.skipIf(skip)("a seeder's UDP endpoint moves mid-download", { timeout: 240_000 }, () => {
  const p = natPair({
    scratchPrefix: 'coterie-netns-moved-',
    nsPrefix: 'mvd',
    fileBytes: FILE_BYTES,
    // UDP between the homes is dropped until the test deletes the table.
    dropUdpTable: 'mvd',
    trackerArgs: ['--relay-rate', '256KiB'],
  });
  const { dest, dirOf, run, json, counters } = p;
  /** The downloader's log messages about its seeder links, in order. */
  const linkEvents = () =>
    readFileSync(join(dirOf(p.downloader), 'peer.log'), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => (JSON.parse(l) as { msg?: string }).msg ?? '')
      .filter((m) =>
        [
          'a seeder moved: trying it there now',
          'relayed seeder now reached directly',
          'no direct path to a relayed seeder yet',
        ].includes(m),
      );
  /** The same, with their reasons and addresses and times: what a failure shows. */
  const linkDetail = () =>
    readFileSync(join(dirOf(p.downloader), 'peer.log'), 'utf8')
      .split('\n')
      .filter((l) => /seeder moved|reached directly|no direct path|seeder connection lost/.test(l))
      .map((l) => {
        const { time, msg, reason, address } = JSON.parse(l) as Record<string, unknown>;
        return JSON.stringify({ time, msg, reason, address });
      })
      .join('\n');
  const udpOf = (h: Home) => json<{ reach?: { udp?: string } }>(h, 'status').reach?.udp;

  it('punches to the new endpoint at once when the tracker says the seeder moved', async () => {
    const { lab, seeder, downloader } = p;
    await until(
      'the seeder behind NAT, on the relay, with a UDP endpoint',
      () => {
        const s = json<{ reach?: { reachable: string; relay?: string; udp?: string } }>(seeder, 'status');
        return s.reach?.reachable === 'nat' && s.reach.relay !== undefined && s.reach.udp !== undefined;
      },
      30_000,
    );
    const oldUdp = udpOf(seeder)!;
    expect(oldUdp).not.toBe(`${seeder.wan}:${NEW_PORT}`);
    run(downloader, 'download_file', 'films', 'film.bin', dest);
    await until('1 MiB through the relay', () => (counters().relay ?? 0) >= MiB, 60_000);
    expect(linkEvents()).not.toContain('relayed seeder now reached directly');
    // The router's UDP mapping for the seeder moves to another port; TCP flows are left alone.
    lab.nft(
      seeder.router,
      `insert rule ip nat postrouting oifname "${seeder.up}" ip saddr ${seeder.lan} meta l4proto udp snat to ${seeder.wan}:${NEW_PORT}`,
    );
    lab.inNs(seeder.router, 'conntrack', '-D', '-p', 'udp');
    lab.nft(seeder.router, 'delete table ip mvd');
    await until(
      'the seeder sees its new endpoint',
      () => udpOf(seeder) === `${seeder.wan}:${NEW_PORT}`,
      60_000,
    );
    await until(
      'the upgrade',
      () => linkEvents().includes('relayed seeder now reached directly'),
      60_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; the downloader's link events: ${linkEvents().join(' | ')}`);
    });
    const events = linkEvents();
    const upgraded = events.indexOf('relayed seeder now reached directly');
    const moved = events.slice(0, upgraded).lastIndexOf('a seeder moved: trying it there now');
    expect(moved, linkDetail()).toBeGreaterThanOrEqual(0);
    // The attempt the move brought forward is the one that got through; at most the attempt that
    // was dialling the old endpoint when the news came failed in between (the next follows it at
    // once: peer-download-swarm.test.ts checks that on a fake clock).
    const between = events.slice(moved + 1, upgraded);
    expect(between.length, linkDetail()).toBeLessThanOrEqual(1);
    expect(
      between.every((e) => e === 'no direct path to a relayed seeder yet'),
      linkDetail(),
    ).toBe(true);
    await p.downloadCompleted(120_000);
    expect(counters().udp ?? 0).toBeGreaterThan(MiB);
  });
});
