import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServerCertificate } from '../../src/core/x509.js';
import { callDaemon } from '../../src/peer/control/client.js';
import type { StatusView } from '../../src/protocol/control.js';
import {
  encodeRelayFrame,
  formatRelayEndpoint,
  type RelayEndpoint,
  RelayFrameDecoder,
  type RelayServerFrame,
  relayFrameChecks,
} from '../../src/protocol/relay.js';
import { type RunningRelay, startRelay, whoamiAuthenticator } from '../../src/relay/index.js';
import {
  acceptViaRelay,
  connectToPeer,
  createIdentity,
  dialViaRelay,
  RelayReservation,
  relayHandshake,
} from '../../src/wire/index.js';
import { captureProxy } from '../helpers/capture-proxy.js';
import { coterie, randomFile, until } from '../helpers/cli-harness.js';
import { cliSwarm } from '../helpers/cli-swarm.js';
import { closedWith, helloOver } from '../helpers/piece-client.js';
import { call, randomPeerId, userToken } from '../helpers/tracker.js';

// Issue 19 on loopback: a tracker listing two relays (run here, in the test's process, so the
// test sees every byte they splice), a seeder that listens where its advertised address and the
// source address the tracker sees do not lead (so only a relay reaches it), a seeder reachable
// directly, and a downloader.

type Name = 'alice' | 'bob' | 'carol';
interface DownloadRow {
  fileName: string;
  state: string;
  doneBytes: number;
  size: number;
  error: string | null;
}

/**
 * Every byte of `stream` up to its end, leaving it open for writing (a `for await` would
 * destroy it); a close before the end, or an error (a write after the end included), rejects. Bounded by the test's timeout.
 */
function readAll(stream: Duplex): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.resume(); // relayHandshake hands its socket over paused
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('error', reject);
    stream.once('close', () =>
      reject(new Error(`closed before its end, after ${Buffer.concat(chunks).length} bytes`)),
    );
  });
}

describe('relays on loopback', { timeout: 120_000 }, () => {
  const swarm = cliSwarm<Name>('coterie-relay-');
  const { root, dir, ok } = swarm;
  const relays: RunningRelay[] = [];
  const relayed: Buffer[] = [];
  let relayedBytes = 0;
  const file = join(root, 'files', 'film.bin');
  const FILE_BYTES = 12 * 1024 * 1024;

  const status = async (n: Name) => (await callDaemon(dir(n), 'status', [])) as StatusView;
  const relayAt = (address: string) => relays.find((r) => `127.0.0.1:${r.port}` === address);
  const endpointOf = (r: RunningRelay, port = r.port): RelayEndpoint => ({
    host: '127.0.0.1',
    port,
    fingerprint: r.fingerprint,
  });
  const download = async (name: string) => {
    const dest = join(root, 'dl', name);
    await ok('carol', 'download_file', 'films', 'film.bin', dest);
    return dest;
  };
  const finished = async (dest: string, ms = 60_000) => {
    await until(
      `download to ${dest}`,
      async () => {
        const row = (await swarm.downloads<DownloadRow & { dest: string }>('carol')).find(
          (d) => d.dest === dest,
        );
        if (row?.state === 'failed') throw new Error(`download failed: ${row.error}`);
        return row?.state === 'completed';
      },
      ms,
    );
    expect(readFileSync(dest).equals(readFileSync(file))).toBe(true);
  };

  beforeAll(async () => {
    await randomFile(file, FILE_BYTES);
    mkdirSync(join(root, 'dl'), { recursive: true });
    let trackerUrl = '';
    const authenticate = (token: string) => whoamiAuthenticator(trackerUrl)(token);
    for (let i = 0; i < 2; i++) {
      relays.push(
        await startRelay({
          host: '127.0.0.1',
          tls: await createServerCertificate('coterie relay', '127.0.0.1'),
          authenticate,
          tap: (chunk) => {
            relayedBytes += chunk.length;
            relayed.push(Buffer.from(chunk));
          },
        }),
      );
    }
    trackerUrl = await swarm.startTracker([
      '--no-relay',
      ...relays.flatMap((r) => ['--extra-relay', formatRelayEndpoint(endpointOf(r))]),
      '--heartbeat-interval-ms',
      '1000',
    ]);
    // alice listens on 127.0.0.2 and says 127.0.0.3: the tracker, seeing 127.0.0.1, reaches neither.
    // She caps her upload so a download through her lasts long enough to lose a relay under it.
    // One after another: three daemon starts at once on a loaded machine can each pass the launcher's 20 s.
    await swarm.startPeer('alice', [
      '--host',
      '127.0.0.2',
      '--advertise',
      '127.0.0.3',
      '--upload-limit-kib',
      '2048',
      // Relays are this file's subject: with hole punching, loopback would always punch (punch.test.ts).
      '--no-punch',
    ]);
    await swarm.startPeer('bob', ['--no-punch']);
    await swarm.startPeer('carol', ['--no-punch']);
  }, 90_000);

  afterAll(async () => {
    await Promise.all(relays.map((r) => r.close()));
  });

  it('lists the relays in GET /v1/cluster; the tracker tells each peer whether it dialled it back', async () => {
    const cluster = await call<{ relays: string[] }>(swarm.trackerUrl, 'GET', '/v1/cluster');
    // Each with the SHA-256 of its certificate, which peers pin.
    expect(cluster.relays).toEqual(relays.map((r) => `127.0.0.1:${r.port}#sha256=${r.fingerprint}`));
    for (const n of ['alice', 'bob', 'carol'] as const) {
      const r = await coterie(['--data-dir', dir(n), 'create_user', n, '-'], { input: `${n}-password\n` });
      expect(r.code, r.err).toBe(0);
      await ok(n, 'login', n, `${n}-password`);
    }
    await until('bob reachable directly', async () => (await status('bob')).reach?.reachable === 'direct');
    expect((await status('bob')).reach?.address).toMatch(/^127\.0\.0\.1:\d+$/);
    await until('alice behind a relay', async () => (await status('alice')).reach?.relay !== undefined);
    const alice = await status('alice');
    expect(alice.reach?.reachable).toBe('nat');
    expect(relayAt(alice.reach!.relay!)).toBeDefined();
    const shown = await ok('alice', 'status');
    expect(shown.out).toMatch(/reachable: nat, relayed by 127\.0\.0\.1:\d+/);
  });

  it('a member downloads from a seeder only a relay reaches: byte-identical, and the relay saw no plaintext', async () => {
    await ok('alice', 'create_group', 'films');
    for (const n of ['bob', 'carol'] as const) {
      await ok(n, 'join_group', 'films');
      await ok('alice', 'accept_request', 'films', n);
    }
    await ok('alice', 'upload_file', file, 'films');
    const before = relayedBytes;
    const dest = await download('via-relay.bin');
    await finished(dest);
    expect(relayedBytes - before).toBeGreaterThan(FILE_BYTES);
    // TLS runs inside the circuit: no 64-byte window of the file crosses the relay in the clear.
    const seen = Buffer.concat(relayed);
    const bytes = readFileSync(file);
    for (let at = 0; at + 64 <= bytes.length; at += 256 * 1024 + 17) {
      expect(seen.indexOf(bytes.subarray(at, at + 64))).toBe(-1);
    }
  });

  it("a non-member's circuit ends at the seeder's ticket check, exactly as a direct connection does", async () => {
    const alice = await status('alice');
    const fileId = (
      (await callDaemon(dir('alice'), 'list_files', ['films'])) as { files: { fileId: string }[] }
    ).files[0]!.fileId;
    const eve = await createIdentity();
    const token = await userToken(swarm.trackerUrl, 'eve');
    const refusalOf = async (stream: Duplex) =>
      closedWith(helloOver(stream, { identity: eve, fileId, ticket: 'eve-made-this-up' }));
    const relayed = await dialViaRelay({
      relay: endpointOf(relayAt(alice.reach!.relay!)!),
      target: alice.peerId,
      identity: eve,
      token,
    });
    const { socket: direct } = await connectToPeer({
      host: '127.0.0.2', // where she listens (she advertises 127.0.0.3)
      port: alice.serving.port,
      identity: eve,
      expectedPeerId: alice.peerId,
    });
    const [viaRelay, viaDirect] = await Promise.all([refusalOf(relayed.stream), refusalOf(direct)]);
    expect(viaDirect).toMatch(/^TICKET_/);
    expect(viaRelay).toBe(viaDirect);
  });

  it('refuses with codes: no session (RELAY_FORBIDDEN), past the per-user circuit cap (RELAY_BUSY)', async () => {
    const relay = relays[0]!;
    const at = endpointOf(relay);
    const target = randomPeerId();
    await expect(
      relayHandshake(at, { t: 'reserve', token: 'not-a-session', peerId: target }, (f) => f.t === 'reserved'),
    ).rejects.toMatchObject({ code: 'RELAY_FORBIDDEN' });
    const token = await userToken(swarm.trackerUrl, 'mallory');
    await expect(
      relayHandshake(
        at,
        { t: 'connect', token: 'nope', peerId: randomPeerId(), target },
        (f) => f.t === 'connected',
      ),
    ).rejects.toMatchObject({ code: 'RELAY_FORBIDDEN' });
    // Another user's reserved peer id cannot be taken over.
    const held = await relayHandshake(at, { t: 'reserve', token, peerId: target }, (f) => f.t === 'reserved');
    const other = await userToken(swarm.trackerUrl, 'trudy');
    await expect(
      relayHandshake(at, { t: 'reserve', token: other, peerId: target }, (f) => f.t === 'reserved'),
    ).rejects.toMatchObject({ code: 'RELAY_FORBIDDEN' });
    // A relay allowing one circuit per user: the second waits on no accept, and is refused busy.
    const tight = await startRelay({
      host: '127.0.0.1',
      tls: await createServerCertificate('coterie relay', '127.0.0.1'),
      maxCircuitsPerUser: 1,
      authenticate: whoamiAuthenticator(swarm.trackerUrl),
    });
    try {
      const tat = endpointOf(tight);
      const reserved = await relayHandshake(
        tat,
        { t: 'reserve', token, peerId: target },
        (f) => f.t === 'reserved',
      );
      const first = relayHandshake(
        tat,
        { t: 'connect', token: other, peerId: randomPeerId(), target },
        () => false,
      );
      first.catch(() => {});
      await until(
        'first circuit pending',
        () => tight.stats().circuits === 1 || tight.stats().refused > 0,
        5_000,
      );
      await expect(
        relayHandshake(
          tat,
          { t: 'connect', token: other, peerId: randomPeerId(), target },
          (f) => f.t === 'connected',
        ),
      ).rejects.toMatchObject({ code: 'RELAY_BUSY' });
      reserved.destroy();
    } finally {
      await tight.close();
    }
    held.destroy();
  });

  it('on the path to a relay, neither a session token nor the bytes relayed are readable (TLS control channel)', async () => {
    const relay = relays[0]!;
    const proxy = await captureProxy({ host: '127.0.0.1', port: relay.port });
    try {
      const at = endpointOf(relay, proxy.port);
      const [seedToken, fetchToken] = [
        await userToken(swarm.trackerUrl, 'sam'),
        await userToken(swarm.trackerUrl, 'dora'),
      ];
      const [seed, fetcher] = [await createIdentity(), await createIdentity()];
      const payload = randomBytes(1024 * 1024);
      // The peer's own reservation and circuit code (peer/reach.ts uses these), through the proxy.
      const reservation = await RelayReservation.open({
        relay: at,
        peerId: seed.peerId,
        token: () => seedToken,
        onIncoming: (circuit) => {
          void acceptViaRelay({ relay: at, circuit, identity: seed, token: seedToken }).then(({ stream }) =>
            stream.end(payload),
          );
        },
        onClosed: () => {},
      });
      reservation.check(); // a renewal: the token crosses once more
      try {
        const { stream } = await dialViaRelay({
          relay: at,
          target: seed.peerId,
          identity: fetcher,
          token: fetchToken,
        });
        const received: Buffer[] = [];
        for await (const chunk of stream) received.push(chunk as Buffer);
        expect(Buffer.concat(received).equals(payload)).toBe(true);
      } finally {
        reservation.close();
      }
      const seen = proxy.captured();
      expect(seen.length).toBeGreaterThan(payload.length);
      for (const token of [seedToken, fetchToken]) {
        expect(seen.indexOf(Buffer.from(token)), 'a session token in clear').toBe(-1);
      }
      expect(seen.indexOf(Buffer.from('"reserve"')), 'a control frame in clear').toBe(-1);
      for (let at = 0; at + 64 <= payload.length; at += 64 * 1024 + 7) {
        expect(seen.indexOf(payload.subarray(at, at + 64)), 'relayed bytes in clear').toBe(-1);
      }
    } finally {
      await proxy.close();
    }
  });

  it("passes one side's end on as a half-close: the other direction flows on, and the circuit closes after both ends", async () => {
    // The relay's own half-close, so its two endpoints carry plain bytes over their TLS to the relay
    // (the peers' TLS inside would add its own close_notify, which this is not about). The seeder
    // ends first; its tail must all arrive, and the downloader's answer sent after that end must
    // still reach it: the relay used to tear the circuit down at the first end, losing what it still
    // held for the other side, and a peer's connection to the relay that ended its own sending when
    // the relay passed the end on cut the answer short.
    const relay = relays[1]!;
    const at = endpointOf(relay);
    const [seedToken, fetchToken] = [
      await userToken(swarm.trackerUrl, 'hal'),
      await userToken(swarm.trackerUrl, 'fay'),
    ];
    const seeder = randomPeerId();
    const payload = randomBytes(4 * 1024 * 1024);
    const answer = randomBytes(256 * 1024);
    const circuits = relay.stats().circuits;
    let seederGot: Promise<Buffer> | undefined;
    const reservation = await RelayReservation.open({
      relay: at,
      peerId: seeder,
      token: () => seedToken,
      onIncoming: (circuit) => {
        seederGot = relayHandshake(
          at,
          { t: 'accept', token: seedToken, circuit },
          (f) => f.t === 'connected',
        ).then((socket) => {
          socket.end(payload);
          return readAll(socket);
        });
      },
      onClosed: () => {},
    });
    try {
      const socket = await relayHandshake(
        at,
        { t: 'connect', token: fetchToken, peerId: randomPeerId(), target: seeder },
        (f) => f.t === 'connected',
      );
      const received = await readAll(socket);
      expect(received.length).toBe(payload.length);
      expect(received.equals(payload)).toBe(true);
      // Only after the seeder's end has arrived does the downloader answer, then end.
      socket.end(answer);
      const back = await seederGot;
      expect(back?.length).toBe(answer.length);
      expect(back?.equals(answer)).toBe(true);
      await until('the circuit closes once both sides have ended', () => relay.stats().circuits === circuits);
    } finally {
      reservation.close();
    }
  });

  it('refuses a relay whose certificate is not the pinned one (RELAY_CERT_CHANGED) before the token leaves', async () => {
    const proxy = await captureProxy({ host: '127.0.0.1', port: relays[0]!.port });
    try {
      const token = await userToken(swarm.trackerUrl, 'pat');
      // relays[1]'s fingerprint for relays[0]: a relay that is not the one listed.
      const wrong = { ...endpointOf(relays[0]!, proxy.port), fingerprint: relays[1]!.fingerprint };
      const reservations = relays[0]!.stats().reservations;
      await expect(
        relayHandshake(wrong, { t: 'reserve', token, peerId: randomPeerId() }, (f) => f.t === 'reserved'),
      ).rejects.toMatchObject({ code: 'RELAY_CERT_CHANGED' });
      await expect(
        dialViaRelay({ relay: wrong, target: randomPeerId(), identity: await createIdentity(), token }),
      ).rejects.toMatchObject({ code: 'RELAY_CERT_CHANGED' });
      expect(relays[0]!.stats().reservations).toBe(reservations);
      // The handshake crossed; nothing of ours after it, and the token never.
      expect(proxy.captured().length).toBeGreaterThan(0);
      expect(proxy.captured().indexOf(Buffer.from(token))).toBe(-1);
    } finally {
      await proxy.close();
    }
  });

  it('answers a plain-TCP (protocol 1) client with a refusal and closes, rather than hanging', async () => {
    const socket = net.connect({ host: '127.0.0.1', port: relays[0]!.port });
    const decoder = new RelayFrameDecoder<RelayServerFrame>('server', await relayFrameChecks());
    const frames: RelayServerFrame[] = [];
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (d: Buffer) => frames.push(...decoder.push(d)));
    socket.on('error', () => {});
    socket.write(encodeRelayFrame({ t: 'reserve', v: 1, token: 'old-client-token', peerId: randomPeerId() }));
    const started = Date.now();
    await closed;
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(frames).toEqual([expect.objectContaining({ t: 'refused', code: 'PROTOCOL_ERROR' })]);
    expect((frames[0] as { message: string }).message).toMatch(/TLS/);
  });

  it('mixes a direct and a relayed seeder, and finishes when the relay under it dies', async () => {
    await ok('bob', 'download_file', 'films', 'film.bin', join(root, 'bob-film.bin'));
    await until(
      'bob has the file',
      async () => (await swarm.downloads<DownloadRow>('bob')).every((d) => d.state === 'completed'),
      60_000,
    );
    const mixedBefore = relayedBytes;
    const mixed = await download('mixed.bin');
    await finished(mixed);
    // alice's circuit carried part of it (bob's direct link the rest).
    expect(relayedBytes).toBeGreaterThan(mixedBefore);

    // bob leaves: only alice, through her relay, serves the next download; her relay dies mid-way.
    await ok('bob', 'stop_share', 'films', 'film.bin');
    const dest = await download('relay-killed.bin');
    await until('a fifth downloaded', async () => {
      const row = (await swarm.downloads<DownloadRow & { dest: string }>('carol')).find(
        (d) => d.dest === dest,
      );
      return (row?.doneBytes ?? 0) > FILE_BYTES / 5;
    });
    const used = (await status('alice')).reach!.relay!;
    await relayAt(used)!.close();
    await until('alice moved to the other relay', async () => {
      const r = (await status('alice')).reach?.relay;
      return r !== undefined && r !== used;
    });
    await finished(dest);
  });
});
