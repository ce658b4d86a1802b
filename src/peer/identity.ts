import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * TEMPORARY until src/wire/identity.ts (core helper) lands: a stable random
 * peer id kept in DIR/peer-id. Replaced by the certificate fingerprint.
 */
export interface PeerIdentityHandle {
  peerId: string;
}

export async function loadPeerIdentity(dataDir: string): Promise<PeerIdentityHandle> {
  const path = join(dataDir, 'peer-id');
  try {
    const id = readFileSync(path, 'utf8').trim();
    if (/^[0-9a-f]{64}$/.test(id)) return { peerId: id };
  } catch {
    // first start
  }
  const peerId = createHash('sha256').update(randomBytes(32)).digest('hex');
  writeFileSync(path, `${peerId}\n`, { mode: 0o600 });
  return { peerId };
}
