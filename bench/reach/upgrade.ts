// `BENCH_PARTS=upgrade npm run bench -- reach` (issue 19), as root, in the namespace lab: the
// relayed → direct upgrade time. Seeder and downloader sit behind port-restricted NATs; the
// seeder's router drops UDP between the two homes, so the download starts through the tracker's
// relay (held to 512 KiB/s so that it lasts). After 2 MiB the rule goes: from that moment a
// direct path is possible, and the figure is the time until the download's first direct bytes
// (64 KiB over UDP from the seeder, counted by nftables in the downloader's home, more than the
// punch's own datagrams). The downloader tries an upgrade 1.5 s after the relayed link is up,
// then after 3, 6 and every 10 s (less up to 30 % each, see upgrade-schedule.ts), so the figure is
// the wait for the next attempt plus the punch. Setup as test/integration/netns-upgrade.test.ts.
import { mkdirSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { NetnsLab, netnsMissing } from '../lib/netns.js';
import { randomFile } from '../lib/random-file.js';

const MiB = 1024 * 1024;
const FILE_BYTES = 24 * MiB;
const DIRECT_BYTES = 64 * 1024;
const log = (msg: string) => process.stderr.write(`[reach upgrade] ${msg}\n`);

const missing = netnsMissing();
if (missing !== '') {
  log(`SKIPPED: needs root, ip, nft and tc (${missing})`);
  process.exit(0);
}

/** Polls `ok` every 50 ms for up to `ms`; the time it first held. */
async function until(what: string, ok: () => boolean, ms: number): Promise<number> {
  const deadline = performance.now() + ms;
  for (;;) {
    if (ok()) return performance.now();
    if (performance.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const lab = new NetnsLab(process.env.COTERIE_NETNS_PREFIX ?? 'udx');
const scratch = join(tmpdir(), `coterie-reach-upgrade-${lab.id}`);
try {
  const seeder = lab.addHome('restricted');
  const downloader = lab.addHome('restricted');
  lab.dropUdp(seeder.router, downloader.wan, 'upgr');
  const tracker = await lab.startTracker(join(scratch, 'tracker'), ['--relay-rate', '512KiB']);
  const dirOf = (name: string) => join(scratch, name);
  for (const [h, name] of [
    [seeder, 'alice'],
    [downloader, 'bob'],
  ] as const)
    await lab.startMember(h.home, { name, address: h.lan, dataDir: dirOf(name), tracker });
  const run = (h: typeof seeder, ...args: string[]) =>
    lab.coterie(h.home, ['--data-dir', dirOf(h === seeder ? 'alice' : 'bob'), ...args]);
  run(seeder, 'create_group', 'films');
  run(downloader, 'join_group', 'films');
  run(seeder, 'accept_request', 'films', 'bob');
  const file = join(scratch, 'film.bin');
  await randomFile(file, FILE_BYTES);
  run(seeder, 'upload_file', file, 'films');
  mkdirSync(join(scratch, 'dl'), { recursive: true });
  lab.addCounters(downloader.home, {
    relay: 'ip saddr 198.18.0.1 tcp sport 7072',
    udp: `ip saddr ${seeder.wan} meta l4proto udp`,
  });
  const counters = () => lab.readCounters(downloader.home);
  await until(
    'the seeder behind NAT, on the relay, with a UDP endpoint',
    () => {
      const s = JSON.parse(run(seeder, '--json', 'status')) as {
        reach?: { reachable: string; relay?: string; udp?: string };
      };
      return s.reach?.reachable === 'nat' && s.reach.relay !== undefined && s.reach.udp !== undefined;
    },
    30_000,
  );
  run(downloader, 'download_file', 'films', 'film.bin', join(scratch, 'dl', 'film.bin'));
  await until('2 MiB through the relay', () => (counters().relay ?? 0) >= 2 * MiB, 60_000);
  const udpBefore = counters().udp ?? 0;
  lab.nft(seeder.router, 'delete table ip upgr');
  const possible = performance.now();
  const load1 = Math.round(loadavg()[0]! * 10) / 10;
  const direct = await until(
    'the first direct bytes',
    () => (counters().udp ?? 0) - udpBefore >= DIRECT_BYTES,
    90_000,
  );
  process.stdout.write(
    `${JSON.stringify({ name: 'reach.upgrade.ms', value: Math.round(direct - possible), unit: 'ms', firstAttemptMs: 1_500, attemptIntervalMs: 10_000, load1 })}\n`,
  );
} finally {
  lab.cleanUp();
  rmSync(scratch, { recursive: true, force: true });
}
