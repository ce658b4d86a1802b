// The network-namespace lab lives in bench/lib (the reach benchmark uses it too; bench/ does not import test/).
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import { type Home, NetnsLab } from '../../bench/lib/netns.js';
import { randomFile } from './cli-harness.js';
import { tempDir } from './temp-dir.js';
import { until } from './wait.js';

export * from '../../bench/lib/netns.js';

export interface NatPairOptions {
  /** The scratch directory's prefix (coterie-netns-…-). */
  scratchPrefix: string;
  /** The namespaces' prefix unless COTERIE_NETNS_PREFIX gives one. */
  nsPrefix: string;
  fileBytes: number;
  /** The seeder's uplink (Mbit/s), to make the download last. */
  seederMbit?: number;
  /** Drop UDP between the homes at the seeder's router from the start, in an nft table of this name. */
  dropUdpTable?: string;
  /** The tracker's flags (its relay's rate). */
  trackerArgs?: string[];
}

/** A seeder and a downloader behind NAT sharing one file: what the suites use of it. */
export interface NatPair {
  readonly lab: NetnsLab;
  readonly seeder: Home;
  readonly downloader: Home;
  /** The shared file, and where the downloader puts it. */
  readonly file: string;
  readonly dest: string;
  /** A peer's data directory. */
  dirOf(h: Home): string;
  /** `coterie --data-dir <h's>` … in h's namespace: its output. */
  run(h: Home, ...args: string[]): string;
  json<T>(h: Home, ...args: string[]): T;
  /** The downloader's byte counters: `relay` (from the tracker's relay), `udp` (from the seeder). */
  counters(): Record<string, number>;
  /** Waits for the downloader's download to complete (a failed one throws its error), then checks its bytes. */
  downloadCompleted(timeoutMs: number): Promise<void>;
}

/**
 * The set-up of the punched and relayed download suites (issue 19): seeder alice and downloader
 * bob each behind a port-restricted NAT, a tracker, group 'films' with bob accepted, alice
 * sharing a random film.bin, and the downloader's counters. Call it in a describe: it registers
 * the beforeAll that builds it and the afterAll that removes it (and checks that no namespace
 * is left behind).
 */
export function natPair(o: NatPairOptions): NatPair {
  const scratch = tempDir(o.scratchPrefix);
  let lab: NetnsLab | undefined;
  let seeder: Home | undefined;
  let downloader: Home | undefined;
  const built = <T>(x: T | undefined): T => {
    if (x === undefined) throw new Error('the NAT pair is built in beforeAll');
    return x;
  };
  const dirOf = (h: Home) => join(scratch.path, h === seeder ? 'alice' : 'bob');
  const run = (h: Home, ...args: string[]) => built(lab).coterie(h.home, ['--data-dir', dirOf(h), ...args]);
  const pair: NatPair = {
    get lab() {
      return built(lab);
    },
    get seeder() {
      return built(seeder);
    },
    get downloader() {
      return built(downloader);
    },
    file: join(scratch.path, 'files', 'film.bin'),
    dest: join(scratch.path, 'dl', 'film.bin'),
    dirOf,
    run,
    json: <T>(h: Home, ...args: string[]) => JSON.parse(run(h, '--json', ...args)) as T,
    counters: () => built(lab).readCounters(built(downloader).home),
    async downloadCompleted(timeoutMs) {
      await until(
        'the download completed',
        () => {
          const { downloads } = pair.json<{ downloads: Array<{ state: string; error: string | null }> }>(
            built(downloader),
            'show_downloads',
          );
          if (downloads[0]?.state === 'failed') throw new Error(`download failed: ${downloads[0].error}`);
          return downloads[0]?.state === 'completed';
        },
        timeoutMs,
        500,
      );
      expect(readFileSync(pair.dest).equals(readFileSync(pair.file))).toBe(true);
    },
  };

  beforeAll(async () => {
    const l = new NetnsLab(process.env.COTERIE_NETNS_PREFIX ?? o.nsPrefix);
    lab = l;
    try {
      const s = l.addHome('restricted', ...(o.seederMbit === undefined ? [] : [o.seederMbit]));
      const d = l.addHome('restricted');
      seeder = s;
      downloader = d;
      if (o.dropUdpTable !== undefined) l.dropUdp(s.router, d.wan, o.dropUdpTable);
      const tracker = await l.startTracker(join(scratch.path, 'tracker'), o.trackerArgs ?? []);
      await Promise.all(
        [
          { h: s, name: 'alice' },
          { h: d, name: 'bob' },
        ].map(({ h, name }) => l.startMember(h.home, { name, address: h.lan, dataDir: dirOf(h), tracker })),
      );
      run(s, 'create_group', 'films');
      run(d, 'join_group', 'films');
      run(s, 'accept_request', 'films', 'bob');
      await randomFile(pair.file, o.fileBytes);
      run(s, 'upload_file', pair.file, 'films');
      mkdirSync(join(scratch.path, 'dl'), { recursive: true });
      l.addCounters(d.home, {
        relay: 'ip saddr 198.18.0.1 tcp sport 7072',
        udp: `ip saddr ${s.wan} meta l4proto udp`,
      });
    } catch (err) {
      l.cleanUp();
      throw err;
    }
  }, 120_000);

  afterAll(() => {
    const made = lab?.name('');
    lab?.cleanUp();
    scratch.remove();
    if (made !== undefined) expect(lab!.leftOver(), `namespaces ${made}* left behind`).toEqual([]);
  });
  return pair;
}
