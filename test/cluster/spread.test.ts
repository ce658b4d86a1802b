// Peers spread over a cluster's trackers (issue 22): 100 peers started at once land within ±20 %
// of an even share of three trackers, and a tracker restarted after a SIGKILL gets its share back
// within a minute. The peers are the peer daemon's own tracker pool and session (the code that
// picks a tracker by the power of two choices and follows a tracker's `move`), one hundred of them
// in this process; the trackers are real processes on PostgreSQL at their default cluster timings.
import { afterAll, expect, it } from 'vitest';
import { randomPeerId } from '../../bench/lib/manifests.js';
import { type KnownTracker, TrackerPool } from '../../src/peer/tracker/pool.js';
import { TrackerSession } from '../../src/peer/tracker/session.js';
import { call, userToken } from '../helpers/tracker.js';
import { until } from '../helpers/wait.js';
import { describeWithPg } from './pg.js';

const PEERS = 100;
const TRACKERS = 3;
const EVEN = PEERS / TRACKERS;

describeWithPg(
  'peers spread over the trackers',
  {
    prefix: 'coterie-spread-',
    trackers: TRACKERS,
    together: true,
    flags: ['--insecure-http'],
    timeout: 150_000,
  },
  (cluster) => {
    const sessions: TrackerSession[] = [];
    afterAll(() => {
      for (const s of sessions) s.stop();
    });

    /** How many of the peers each tracker (by index) has, as the peers see it. */
    const shares = () =>
      cluster.trackers.map((t) => sessions.filter((s) => s.url === new URL(t.url).origin).length);
    const even = (counts: number[]) =>
      counts.reduce((a, b) => a + b, 0) === PEERS && counts.every((n) => Math.abs(n - EVEN) <= 0.2 * EVEN);
    /** until(), naming the shares at the timeout. */
    const settle = (what: string, check: () => boolean, ms: number) =>
      until(what, check, ms).catch((err: Error) => {
        throw new Error(`${err.message}; shares ${shares().join('/')}`);
      });

    it('lands 100 peers started at once within ±20 % of an even share, and keeps them there', async () => {
      const first = cluster.trackers[0]!.url;
      const token = await userToken(first, 'spread');
      // Each peer does what the daemon does at start: reads the cluster (all at once, so all see
      // the same figures), picks a tracker, opens its session there.
      await Promise.all(
        Array.from({ length: PEERS }, async () => {
          const pool = new TrackerPool([first]);
          const { trackers } = await call<{ trackers: KnownTracker[] }>(first, 'GET', '/v1/cluster');
          pool.learn(trackers, { choose: true });
          const peerId = randomPeerId();
          const session = new TrackerSession({
            pool,
            getToken: () => token,
            registration: () => ({ peerId, addresses: [], seeding: [], watching: [] }),
          });
          sessions.push(session);
          session.start();
        }),
      );
      await settle('every session connected', () => sessions.every((s) => s.state === 'connected'), 30_000);
      await settle('an even share', () => even(shares()), 45_000);
      // Settled, not passing through: two rebalancing rounds (2 × 4 s) later the trackers have
      // stopped moving peers (an oscillating rebalancer moves dozens a round) and the share is
      // even. A session cut meanwhile by a loaded machine's heartbeat moves one peer, which the
      // next round takes back: hence a few moves allowed, and a settle rather than one look.
      let moved = 0;
      const count = () => moved++;
      for (const s of sessions) s.on('failover', count);
      await new Promise((r) => setTimeout(r, 9_000));
      for (const s of sessions) s.off('failover', count);
      expect(moved, `sessions moved while settled; shares ${shares().join('/')}`).toBeLessThanOrEqual(10);
      await settle('an even share still', () => even(shares()), 20_000);
      expect(shares().reduce((a, b) => a + b, 0)).toBe(PEERS);
    });

    it('gives a tracker restarted after a SIGKILL its share back within a minute', async () => {
      await cluster.trackers[2]!.stop('SIGKILL');
      // Its peers fail over to the other two.
      await settle('the failover to the other two', () => shares()[0]! + shares()[1]! === PEERS, 30_000);
      await cluster.startTracker(2);
      const back = Date.now();
      await settle(
        'the restarted tracker to get its share',
        () => even(shares()) && sessions.every((s) => s.state === 'connected'),
        60_000,
      );
      expect(Date.now() - back).toBeLessThan(60_000);
    });
  },
);
