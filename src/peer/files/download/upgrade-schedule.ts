import { type Backoff, createBackoff } from '../../../core/backoff.js';
import type { UpgradePolicy } from './options.js';

/**
 * When a relayed link's upgrade attempts fall due (issue 19): `delayMs(n)`
 * is the wait before attempt n (1 = the first, counted from the relayed
 * link being ready). The dial that ended on the relay has just tried a
 * punch, so the first attempt waits `firstMs`: soon enough that a path
 * opening early (a NAT's mapping settling, a firewall rule gone) is used
 * within seconds, not right away for the same failure again. Each later
 * wait doubles up to `intervalMs`, less up to `jitter` of it so the
 * downloaders of one seeder do not punch in step: every attempt is a punch
 * message through the tracker and up to 3 s of probes through both NATs,
 * and the cap keeps a path that stays closed cheap.
 */
export function upgradeSchedule(policy: UpgradePolicy, random?: () => number): Backoff {
  return createBackoff({
    baseMs: policy.firstMs,
    maxMs: Math.max(policy.firstMs, policy.intervalMs),
    factor: 2,
    jitter: policy.jitter,
    ...(random === undefined ? {} : { random }),
  });
}
