import { connectToPeer, type PeerIdentity } from '../../wire/index.js';
import { type Dial, DOWNLOAD_DEFAULTS } from './options.js';

/**
 * The default dial: TLS 1.3 with our certificate, refusing any seeder whose
 * public-key fingerprint is not the peer id the tracker listed (PEER_MISMATCH).
 * Given `reads`, the socket decrypts straight into the connection's buffers.
 */
export function createTlsDial(
  identity: PeerIdentity,
  options: { plaintext?: boolean; timeoutMs?: number } = {},
): Dial {
  return async (seeder, signal, reads) => {
    signal.throwIfAborted();
    const { socket } = await connectToPeer({
      host: seeder.address.host,
      port: seeder.address.port,
      identity,
      expectedPeerId: seeder.peerId,
      plaintext: options.plaintext ?? false,
      timeoutMs: options.timeoutMs ?? DOWNLOAD_DEFAULTS.connectTimeoutMs,
      ...(reads === undefined ? {} : { onread: reads.onread }),
    });
    if (signal.aborted) {
      socket.destroy();
      signal.throwIfAborted();
    }
    return socket;
  };
}
