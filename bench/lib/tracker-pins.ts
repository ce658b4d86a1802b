// The trackers' self-signed certificates the tests and benchmarks trust, by
// origin: spawnTracker pins the fingerprint each one printed
// (`https://…#sha256=…`), and the HTTP and session clients of bench/lib check
// it on every connection, so no test needs a CA file or the fingerprint.
import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import tls from 'node:tls';

const pins = new Map<string, string>();

/** Trust the certificate with this SHA-256 (hex) at `origin` (`https://host:port`). */
export function pinTracker(origin: string, fingerprint: string): void {
  pins.set(new URL(origin).origin, fingerprint);
}

/**
 * For an https:// `base` whose tracker was pinned (or that ends in `#sha256=…`): the `createConnection`
 * option (http.request, https.request and ws all take it) that accepts only
 * the pinned certificate; for anything else, nothing.
 */
export function pinnedConnection(base: string): { createConnection?: (options: object) => Socket } {
  const url = new URL(base.replace(/^ws/, 'http'));
  // A URL as a tracker printed it carries its own pin.
  const want = /^#sha256=([0-9a-f]{64})$/.exec(url.hash)?.[1] ?? pins.get(url.origin);
  if (url.protocol !== 'https:' || want === undefined) return {};
  return {
    createConnection: (options: object) => {
      const socket = tls.connect({
        ...(options as tls.ConnectionOptions),
        rejectUnauthorized: false,
        servername: '',
      });
      socket.prependOnceListener('secureConnect', () => {
        const seen = createHash('sha256').update(socket.getPeerCertificate().raw).digest('hex');
        if (seen !== want)
          socket.destroy(new Error(`tracker ${url.origin}: certificate ${seen}, pinned ${want}`));
      });
      return socket;
    },
  };
}
