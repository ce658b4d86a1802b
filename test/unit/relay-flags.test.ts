import { describe, expect, it } from 'vitest';
import { relayAddress } from '../../src/cli/relay-flags.js';

describe('--extra-relay', () => {
  const fp = 'AB'.repeat(32);
  it('takes host:port#sha256=… as coterie relay prints it, colons and capitals allowed, and lists it in one spelling', () => {
    expect(relayAddress(`relay.example:7072#sha256=${fp}`, '--extra-relay')).toBe(
      `relay.example:7072#sha256=${'ab'.repeat(32)}`,
    );
    const colons = fp.match(/../g)!.join(':');
    expect(relayAddress(`[::1]:9#sha256=${colons}`, '--extra-relay')).toBe(
      `[::1]:9#sha256=${'ab'.repeat(32)}`,
    );
  });

  it('refuses a relay without its fingerprint (peers would not use it) or with a malformed one: USAGE', () => {
    for (const bad of ['relay.example:7072', `relay.example#sha256=${fp}`, 'relay.example:7072#sha256=abc']) {
      expect(() => relayAddress(bad, '--extra-relay'), bad).toThrowError(
        expect.objectContaining({ code: 'USAGE' }),
      );
    }
  });
});
