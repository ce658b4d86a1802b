import { createHash, X509Certificate } from 'node:crypto';

/**
 * The peer id of a certificate (PEM string, DER bytes or a parsed
 * certificate): the SHA-256 of its public key (SPKI, DER), hex. Peers pin it
 * on the wire; the tracker checks it when it dials a peer back.
 */
export function peerIdOfCertificate(cert: string | Buffer | X509Certificate): string {
  const x = cert instanceof X509Certificate ? cert : new X509Certificate(cert);
  const spki = x.publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('hex');
}
