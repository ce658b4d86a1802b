import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServerCertificate } from '../../src/core/x509.js';
import { callDaemon } from '../../src/peer/control/client.js';
import type { StatusView } from '../../src/protocol/control.js';
import { formatRelayEndpoint } from '../../src/protocol/relay.js';
import { type RunningRelay, startRelay, whoamiAuthenticator } from '../../src/relay/index.js';
import { coterie, randomFile, until } from '../helpers/cli-harness.js';
import { cliSwarm } from '../helpers/cli-swarm.js';

// Issue 19, hole punching on loopback: alice listens where neither her advertised address nor the
// source the tracker sees leads (so no TCP dial reaches her: she is "behind NAT"), and announces the
// public UDP endpoint a relay's reflector saw. carol downloads from her: the tracker passes carol's
// punch on, alice probes, carol's stream opens over UDP. The relay (run here, so the test sees every
// byte it splices) carries nothing. dave, started with --no-punch, still gets the file through it.

type Name = 'alice' | 'carol' | 'dave';
interface DownloadRow {
  dest: string;
  state: string;
  error: string | null;
}

describe('hole punching on loopback', { timeout: 120_000 }, () => {
  const swarm = cliSwarm<Name>('coterie-punch-');
  const { root, dir, ok } = swarm;
  let relay: RunningRelay;
  let relayedBytes = 0;
  const file = join(root, 'files', 'film.bin');
  const FILE_BYTES = 8 * 1024 * 1024;

  const status = async (n: Name) => (await callDaemon(dir(n), 'status', [])) as StatusView;
  const downloadBy = async (n: Name, name: string) => {
    const dest = join(root, 'dl', name);
    await ok(n, 'download_file', 'films', 'film.bin', dest);
    await until(
      `${n}'s download to ${dest}`,
      async () => {
        const row = (await swarm.downloads<DownloadRow>(n)).find((d) => d.dest === dest);
        if (row?.state === 'failed') throw new Error(`download failed: ${row.error}`);
        return row?.state === 'completed';
      },
      60_000,
    );
    expect(readFileSync(dest).equals(readFileSync(file))).toBe(true);
  };

  beforeAll(async () => {
    await randomFile(file, FILE_BYTES);
    mkdirSync(join(root, 'dl'), { recursive: true });
    let trackerUrl = '';
    relay = await startRelay({
      host: '127.0.0.1',
      tls: await createServerCertificate('coterie relay', '127.0.0.1'),
      authenticate: (token) => whoamiAuthenticator(trackerUrl)(token),
      tap: (chunk) => {
        relayedBytes += chunk.length;
      },
    });
    trackerUrl = await swarm.startTracker([
      '--no-relay',
      '--extra-relay',
      formatRelayEndpoint({ host: '127.0.0.1', port: relay.port, fingerprint: relay.fingerprint }),
    ]);
    // alice listens on 127.0.0.2 and says 127.0.0.3: the tracker, seeing 127.0.0.1, reaches neither.
    await swarm.startPeer('alice', ['--host', '127.0.0.2', '--advertise', '127.0.0.3']);
    await swarm.startPeer('carol');
    await swarm.startPeer('dave', ['--no-punch']);
    for (const n of ['alice', 'carol', 'dave'] as const) {
      const r = await coterie(['--data-dir', dir(n), 'create_user', n, '-'], { input: `${n}-password\n` });
      expect(r.code, r.err).toBe(0);
      await ok(n, 'login', n, `${n}-password`);
    }
    await ok('alice', 'create_group', 'films');
    for (const n of ['carol', 'dave'] as const) {
      await ok(n, 'join_group', 'films');
      await ok('alice', 'accept_request', 'films', n);
    }
    await ok('alice', 'upload_file', file, 'films');
  }, 90_000);

  afterAll(async () => {
    await relay?.close();
  });

  it('a seeder behind NAT learns the UDP endpoint a relay reflector saw, and status shows it', async () => {
    await until('alice behind NAT with a UDP endpoint', async () => {
      const s = await status('alice');
      return s.reach?.reachable === 'nat' && s.reach.relay !== undefined && s.reach.udp !== undefined;
    });
    expect((await status('alice')).reach?.udp).toMatch(/^127\.0\.0\.2:\d+$/);
    expect((await ok('alice', 'status')).out).toMatch(/punches from UDP 127\.0\.0\.2:\d+/);
    expect((await status('dave')).reach?.udp).toBeUndefined();
  });

  it('carol downloads from her over a punched UDP path, byte-identical, and the relay carries nothing', async () => {
    const before = relayedBytes;
    await downloadBy('carol', 'punched.bin');
    expect(relayedBytes - before).toBe(0);
  });

  it('dave, who does not punch, gets the file through the relay', async () => {
    // carol seeds what she fetched, and is reachable directly: she logs out, so alice is the one seeder.
    await ok('carol', 'logout');
    const before = relayedBytes;
    await downloadBy('dave', 'relayed.bin');
    expect(relayedBytes - before).toBeGreaterThan(FILE_BYTES);
  });
});
