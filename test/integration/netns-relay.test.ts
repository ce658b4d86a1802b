import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateTrackerCertificate } from '../../src/cli/tracker-tls.js';
import { certificateFingerprint } from '../../src/protocol/tracker-url.js';
import { randomFile } from '../helpers/cli-harness.js';
import { type Home, NetnsLab, PUBLIC_HOST, type Started, skipWithoutNetns } from '../helpers/netns.js';
import { tempDir } from '../helpers/temp-dir.js';
import { until } from '../helpers/wait.js';

// Issue 19's relay robustness behind real NATs (test/helpers/netns.ts): alice seeds from a home
// behind a symmetric NAT whose uplink is shaped to 16 Mbit/s, bob downloads from a home behind a
// port-restricted one, and the tracker lists two relays that are processes of their own. Mid-way
// through a download, the relay carrying it is SIGKILLed; mid-way through another, both routers
// forget every NAT mapping (conntrack -F). Each download completes, byte-identical.

const skip = skipWithoutNetns('test/integration/netns-relay.test.ts', ['ip', 'nft', 'tc', 'conntrack']);
const FILE_BYTES = 24 * 1024 * 1024 + 5;
const RELAY_PORTS = [7073, 7074];

describe.skipIf(skip)(
  'relays behind real NATs: killed and forgotten mid-download',
  { timeout: 240_000 },
  () => {
    const scratch = tempDir('coterie-netns-relay-');
    let lab: NetnsLab;
    let alice: Home;
    let bob: Home;
    const relays = new Map<string, Started>();
    const dir = (n: string) => join(scratch.path, n);
    const file = (n: string) => join(scratch.path, 'files', n);
    const run = (h: Home, who: string, ...args: string[]) =>
      lab.coterie(h.home, ['--data-dir', dir(who), ...args]);
    const json = <T>(h: Home, who: string, ...args: string[]) =>
      JSON.parse(run(h, who, '--json', ...args)) as T;
    const row = (name: string) =>
      json<{
        downloads: Array<{ fileName: string; state: string; doneBytes: number; error: string | null }>;
      }>(bob, 'bob', 'show_downloads').downloads.find((d) => d.fileName === name);
    const relayOf = () => json<{ reach?: { relay?: string } }>(alice, 'alice', 'status').reach?.relay;

    /** Starts bob's download of `name`, runs `disrupt` once a fifth has arrived, and waits for the rest. */
    const downloadThrough = async (name: string, disrupt: () => void | Promise<void>) => {
      await randomFile(file(name), FILE_BYTES);
      run(alice, 'alice', 'upload_file', file(name), 'family');
      const dest = join(dir('dl'), name);
      run(bob, 'bob', 'download_file', 'family', name, dest);
      await until(
        `a fifth of ${name}`,
        () => {
          const r = row(name);
          if (r?.state === 'completed')
            throw new Error(`${name} completed before the disruption: shape slower`);
          return (r?.doneBytes ?? 0) > FILE_BYTES / 5;
        },
        60_000,
        250,
      );
      await disrupt();
      await until(
        `${name} completed`,
        () => {
          const r = row(name);
          if (r?.state === 'failed') throw new Error(`${name} failed: ${r.error}`);
          return r?.state === 'completed';
        },
        120_000,
        250,
      );
      expect(readFileSync(dest).equals(readFileSync(file(name)))).toBe(true);
    };

    beforeAll(async () => {
      lab = new NetnsLab(process.env.COTERIE_NETNS_PREFIX);
      try {
        alice = lab.addHome('symmetric', 16);
        bob = lab.addHome('restricted');
        // Each relay's certificate is made first, so the tracker can list it pinned (as an operator
        // copies the line `coterie relay` prints into the trackers' --extra-relay).
        const pins = new Map<number, string>();
        for (const port of RELAY_PORTS) {
          mkdirSync(dir(`relay${port}`), { recursive: true });
          const { cert } = await loadOrCreateTrackerCertificate(
            dir(`relay${port}`),
            PUBLIC_HOST,
            'coterie relay',
          );
          pins.set(port, certificateFingerprint(cert));
        }
        const tracker = await lab.startTracker(dir('tracker'), [
          '--no-relay',
          ...RELAY_PORTS.flatMap((p) => ['--extra-relay', `${PUBLIC_HOST}:${p}#sha256=${pins.get(p)}`]),
        ]);
        for (const port of RELAY_PORTS) {
          relays.set(
            `${PUBLIC_HOST}:${port}`,
            await lab.daemon(
              lab.pub,
              [
                'relay',
                '--tracker',
                tracker,
                '--host',
                PUBLIC_HOST,
                '--port',
                String(port),
                '--data-dir',
                dir(`relay${port}`),
                '--log-level',
                'warn',
              ],
              /--extra-relay \S+#sha256=[0-9a-f]{64}/,
              `relay ${port}`,
            ),
          );
        }
        for (const [h, n] of [
          [alice, 'alice'],
          [bob, 'bob'],
        ] as const) {
          await lab.startMember(h.home, { name: n, address: h.lan, dataDir: dir(n), tracker });
        }
        run(alice, 'alice', 'create_group', 'family');
        run(bob, 'bob', 'join_group', 'family');
        run(alice, 'alice', 'accept_request', 'family', 'bob');
        mkdirSync(dir('dl'), { recursive: true });
        await until('alice reserved on a relay', () => relayOf() !== undefined, 30_000, 250);
      } catch (err) {
        lab.cleanUp();
        throw err;
      }
    }, 180_000);

    afterAll(() => {
      lab?.cleanUp();
      scratch.remove();
      if (lab !== undefined) expect(lab.leftOver()).toEqual([]);
    });

    it('the relay process under a download is SIGKILLed: alice reserves on the other, the download completes', async () => {
      await downloadThrough('killed.bin', async () => {
        const used = relayOf()!;
        relays.get(used)!.child.kill('SIGKILL');
        await until(
          'alice moved to the other relay',
          () => {
            const now = relayOf();
            return now !== undefined && now !== used;
          },
          30_000,
          250,
        );
      });
    });

    it('both routers forget every NAT mapping mid-download (conntrack -F): the download completes', async () => {
      await downloadThrough('forgotten.bin', () => {
        // alice's router translates her connections to the relay (reservation, circuit): forget them all.
        expect(lab.inNs(alice.router, 'conntrack', '-L').toString()).toMatch(/dport=707[34]/);
        for (const h of [alice, bob]) lab.inNs(h.router, 'conntrack', '-F');
      });
    });
  },
);
