import { exportJWK, generateKeyPair } from 'jose';
import { describe, expect, it } from 'vitest';
import { signTicket, verifyTicket } from '../../src/protocol/tickets.js';

const PEER = 'a'.repeat(64);
const FILE = 'b'.repeat(64);

async function cluster() {
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'EdDSA', use: 'sig' };
  return { privateKey, jwks: { keys: [jwk] } };
}

describe('tickets', () => {
  it('verifies with the published key and checks file, peer and expiry', async () => {
    const { privateKey, jwks } = await cluster();
    const t = await signTicket(
      { user: 'bob', peer: PEER, file: FILE, group: 'films', ttlSeconds: 60 },
      { privateKey, kid: 'k1' },
    );
    await expect(verifyTicket(t, jwks, { fileId: FILE, peerId: PEER })).resolves.toMatchObject({
      user: 'bob',
      group: 'films',
    });
    await expect(verifyTicket(t, jwks, { fileId: 'c'.repeat(64) })).rejects.toMatchObject({
      code: 'TICKET_WRONG_FILE',
    });
    await expect(verifyTicket(t, jwks, { peerId: 'c'.repeat(64) })).rejects.toMatchObject({
      code: 'TICKET_WRONG_PEER',
    });
    await expect(verifyTicket(t, jwks, { nowSeconds: Date.now() / 1000 + 3600 })).rejects.toMatchObject({
      code: 'TICKET_EXPIRED',
    });
  });

  it('refuses a forged ticket', async () => {
    const real = await cluster();
    const forger = await cluster();
    const t = await signTicket(
      { user: 'eve', peer: PEER, file: FILE, group: 'films', ttlSeconds: 60 },
      { privateKey: forger.privateKey, kid: 'k1' },
    );
    await expect(verifyTicket(t, real.jwks)).rejects.toMatchObject({ code: 'TICKET_INVALID' });
    await expect(verifyTicket('garbage', real.jwks)).rejects.toMatchObject({ code: 'TICKET_INVALID' });
  });
});
