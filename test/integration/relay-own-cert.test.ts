import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { createServerCertificate } from '../../src/core/x509.js';
import { coterie, type Daemon, startProcess, stop } from '../helpers/cli-harness.js';
import { tempDir } from '../helpers/temp-dir.js';

// Issue 19: `coterie relay --tls-cert/--tls-key` serves an operator's certificate instead of one it
// makes, and the `--extra-relay` value it prints pins that certificate's fingerprint.

describe('a standalone relay with an operator certificate', { timeout: 60_000 }, () => {
  const scratch = tempDir('coterie-relay-cert-');
  let relay: Daemon | undefined;
  afterAll(async () => {
    if (relay) await stop(relay.child);
    scratch.remove();
  });

  it('serves it, prints its fingerprint, and refuses half a pair', async () => {
    const pem = await createServerCertificate('relay.example', '127.0.0.1');
    const cert = join(scratch.path, 'cert.pem');
    const key = join(scratch.path, 'key.pem');
    writeFileSync(cert, pem.cert);
    writeFileSync(key, pem.key);
    const expected = new X509Certificate(pem.cert).fingerprint256.replaceAll(':', '').toLowerCase();
    const common = ['relay', '--tracker', 'https://127.0.0.1:9', '--host', '127.0.0.1', '--port', '0'];
    const half = await coterie([...common, '--tls-cert', cert]);
    expect(half.code).not.toBe(0);
    expect(half.err).toMatch(/both --tls-cert and --tls-key/);

    relay = await startProcess(
      [...common, '--tls-cert', cert, '--tls-key', key, '--data-dir', join(scratch.path, 'own')],
      /--extra-relay \S+#sha256=[0-9a-f]{64}/,
      join(scratch.path, 'relay.log'),
    );
    const [, port, fingerprint] = /--extra-relay 127\.0\.0\.1:(\d+)#sha256=([0-9a-f]{64})/.exec(relay.line)!;
    expect(fingerprint).toBe(expected);
    const served = await new Promise<string>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: Number(port), rejectUnauthorized: false }, () => {
        resolve(s.getPeerX509Certificate()!.fingerprint256.replaceAll(':', '').toLowerCase());
        s.destroy();
      });
      s.once('error', reject);
    });
    expect(served).toBe(expected);
  });
});
