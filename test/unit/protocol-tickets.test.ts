import { type CryptoKey, exportJWK, generateKeyPair } from 'jose';
import { describe, expect, it, vi } from 'vitest';
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

  it('imports the cluster key once per key set, and verifies against a replaced one', async () => {
    // A seeder checks a ticket per connection: importing the key each time was a third of it.
    const a = await cluster();
    const sign = (privateKey: CryptoKey) =>
      signTicket(
        { user: 'bob', peer: PEER, file: FILE, group: 'films', ttlSeconds: 60 },
        { privateKey, kid: 'k1' },
      );
    const imports = vi.spyOn(globalThis.crypto.subtle, 'importKey');
    try {
      for (let i = 0; i < 3; i++)
        await expect(verifyTicket(await sign(a.privateKey), a.jwks)).resolves.toBeDefined();
      expect(imports).toHaveBeenCalledTimes(1);
      // Keys rotate by replacing the JWKS (ticket-guard.ts): the new one is used, the old key's tickets fail.
      const b = await cluster();
      await expect(verifyTicket(await sign(b.privateKey), b.jwks)).resolves.toBeDefined();
      await expect(verifyTicket(await sign(a.privateKey), b.jwks)).rejects.toMatchObject({
        code: 'TICKET_INVALID',
      });
    } finally {
      imports.mockRestore();
    }
  });
});
