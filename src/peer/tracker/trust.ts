import { readFileSync } from 'node:fs';
import { Agent, fetch as undiciFetch } from 'undici';
import { CoterieError } from '../../protocol/errors.js';

/**
 * Trusting a tracker's own CA (a self-signed or private certificate for
 * https:// / wss:// trackers) without touching the process-wide trust store:
 * a fetch bound to an undici Agent that adds the CA, and the matching `ca`
 * option for the WebSocket session.
 */
export interface TrackerTrust {
  /** PEM of the extra CA certificate(s). */
  readonly caPem: string;
  readonly fetch: typeof fetch;
}

export function trackerTrust(caPem: string): TrackerTrust {
  const dispatcher = new Agent({ connect: { ca: caPem } });
  const bound = (input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) =>
    undiciFetch(input as Parameters<typeof undiciFetch>[0], {
      ...(init as Parameters<typeof undiciFetch>[1]),
      dispatcher,
    });
  // undici's fetch is the implementation behind the global one; only its type declarations differ.
  return { caPem, fetch: bound as unknown as typeof fetch };
}

/** Reads a CA file for `--tracker-ca`, with an error that says what is wrong. */
export function readTrackerCa(path: string): string {
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (err) {
    throw new CoterieError(
      'PATH_INVALID',
      `cannot read the tracker CA file '${path}': ${(err as Error).message}`,
    );
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new CoterieError(
      'PATH_INVALID',
      `'${path}' holds no PEM certificate: pass the tracker's CA certificate`,
    );
  }
  return pem;
}
