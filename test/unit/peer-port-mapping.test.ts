import { describe, expect, it } from 'vitest';
import { defaultGateway } from '../../src/peer/port-mapping.js';

// The NAT-PMP gateway is the IPv4 default route's, read from /proc/net/route (little-endian hex).
// The protocols themselves are tested against miniupnpd in test/integration/netns-portmap.test.ts.
const HEADER = 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT';

describe('defaultGateway', () => {
  it("reads the default route's gateway", () => {
    const routes = [
      HEADER,
      'eth0\t0001000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0',
      'eth0\t00000000\t0101000A\t0003\t0\t0\t0\t00000000\t0\t0\t0',
    ].join('\n');
    expect(defaultGateway(routes)).toBe('10.0.1.1');
  });

  it('finds none without a default route, or one that is down or has no gateway', () => {
    expect(defaultGateway(HEADER)).toBeUndefined();
    expect(
      defaultGateway(`${HEADER}\neth0\t00000000\t0101000A\t0002\t0\t0\t0\t00000000\t0\t0\t0`),
    ).toBeUndefined();
    expect(
      defaultGateway(`${HEADER}\neth0\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0`),
    ).toBeUndefined();
    expect(defaultGateway('')).toBeUndefined();
  });
});
