// A peer behind NAT holds its relay reservation over one TCP connection. When that connection
// goes silent without a FIN or a reset (the NAT dropped its mapping, the relay's process froze:
// its kernel still acknowledges, so TCP's keepalive sees nothing), the peer must notice and
// reserve again on a new connection. A real relay, in this process, behind a proxy that can
// swallow the bytes of the connections it holds; the peer's reach (peer/reach.ts) with a stub
// tracker session; the keepalive on a fake clock, so nothing here waits on time.

import { EventEmitter } from 'node:events';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createServerCertificate } from '../../src/core/x509.js';
import { createReach, type Reach } from '../../src/peer/reach.js';
import type { TrackerSession } from '../../src/peer/tracker/session.js';
import { formatRelayEndpoint } from '../../src/protocol/relay.js';
import { type RunningRelay, startRelay } from '../../src/relay/index.js';
import { createIdentity } from '../../src/wire/index.js';
import { type CaptureProxy, captureProxy } from '../helpers/capture-proxy.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { until } from '../helpers/wait.js';

const KEEPALIVE = { intervalMs: 15_000, timeoutMs: 10_000, floorMs: 1_000, misses: 2 };

/** The part of a tracker session reach.ts uses: its events, its state, the addresses it was told. */
class StubSession extends EventEmitter {
  state = 'connected';
  readonly announced: string[][] = [];
  async setAddresses(list: string[]): Promise<void> {
    this.announced.push(list);
  }
}

describe('the relay reservation keepalive', () => {
  const closers: Array<() => unknown> = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  const setUp = async () => {
    let authentications = 0;
    const relay: RunningRelay = await startRelay({
      host: '127.0.0.1',
      tls: await createServerCertificate('coterie relay', '127.0.0.1'),
      authenticate: async () => {
        authentications++;
        return { userId: 'sam' };
      },
    });
    closers.push(() => relay.close());
    const proxy: CaptureProxy = await captureProxy({ host: '127.0.0.1', port: relay.port });
    closers.push(() => proxy.close());
    const clock = new FakeClock();
    let answered = 0;
    const session = new StubSession();
    const reach: Reach = createReach({
      session: session as unknown as TrackerSession,
      identity: await createIdentity(),
      token: () => 'token-of-sam',
      accept: () => {},
      directAddresses: () => ['127.0.0.1:1'],
      log: pino({ level: 'silent' }),
      reservation: {
        clock,
        keepalive: KEEPALIVE,
        onRenewed: () => {
          answered++;
        },
      },
    });
    closers.push(() => reach.stop());
    // The tracker lists the relay (reached through the proxy) and finds us behind NAT.
    session.emit('relays', [
      formatRelayEndpoint({ host: '127.0.0.1', port: proxy.port, fingerprint: relay.fingerprint }),
    ]);
    session.emit('reachability', { reachable: 'nat' });
    await until(
      'the first reservation',
      () => relay.stats().reservationsMade === 1 && reach.status().relay !== undefined,
    );
    return { relay, proxy, clock, reach, authentications: () => authentications, answered: () => answered };
  };

  it('pings the relay through the reservation; an answered ping keeps it, without asking for the token again', async () => {
    const { relay, clock, authentications, answered } = await setUp();
    // The fake clock stands still while the answers travel: each ping leaves exactly an interval
    // after the last answer, and its answer comes before any deadline of it passes.
    for (let ping = 1; ping <= 3; ping++) {
      clock.advance(KEEPALIVE.intervalMs);
      await until(`ping ${ping} answered`, () => answered() === ping);
      expect(relay.stats().renewals).toBe(ping);
    }
    expect(relay.stats()).toMatchObject({ reservations: 1, reservationsMade: 1, renewals: 3 });
    // The renewals on the reservation's own connection are trusted for a while (a standalone relay asks the tracker).
    expect(authentications()).toBe(1);
  });

  it('a relay connection gone silent (no FIN, no reset) is left after two missed pings, and the peer reserves again on a new one', async () => {
    const { relay, proxy, clock, reach, answered } = await setUp();
    expect(proxy.connections()).toBe(1);
    proxy.swallow();
    // A ping, unanswered past its deadline; a second one, unanswered too: the relay is taken for gone.
    clock.advance(KEEPALIVE.intervalMs);
    clock.advance(KEEPALIVE.timeoutMs);
    clock.advance(KEEPALIVE.timeoutMs);
    await until('a second reservation', () => relay.stats().reservationsMade === 2);
    expect(proxy.connections()).toBe(2);
    // The relay keeps the new connection's reservation (the silent one is dropped there).
    await until('one reservation at the relay', () => relay.stats().reservations === 1);
    // The peer holds it once the relay's answer arrived (and its keepalive starts from there).
    await until(
      'the peer holds the new reservation',
      () => reach.status().relay === `127.0.0.1:${proxy.port}`,
    );
    // And the new reservation pings on.
    clock.advance(KEEPALIVE.intervalMs);
    await until('the new connection answers its ping', () => answered() === 1);
    expect(relay.stats().renewals).toBe(1);
  });
});
