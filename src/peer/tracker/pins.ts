import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { PRIVATE_FILE_MODE } from '../../os/private-files.js';
import { CoterieError } from '../../protocol/errors.js';
import { certificateFingerprint } from '../../protocol/tracker-url.js';

/** Where a peer keeps the fingerprints it pinned, by tracker origin. */
export const TRACKER_PINS_FILE = 'tracker-pins.json';

/**
 * The certificates a peer accepts from its trackers, by origin
 * (`https://host:port`): the fingerprint its URL gave (`#sha256=…`), or the
 * one a tracker it trusts listed for a member of the cluster, or else the
 * first one it saw, kept in the data directory so that it is pinned from
 * then on (trust on first use). A certificate that a public CA vouches for
 * (chain and host name checked by TLS) needs no pin unless one was given.
 * Anything else is TRACKER_CERT_CHANGED: never accepted silently.
 */
export class TrackerPins {
  private readonly pins = new Map<string, string>();
  /** The last refusal per origin, until a connection there passes: what a failed call reports. */
  private readonly refused = new Map<string, CoterieError>();
  private readonly file: string | undefined;

  /** `dataDir` undefined: nothing kept on disk (first-use pins last as long as the object). */
  constructor(dataDir: string | undefined, given: ReadonlyMap<string, string> = new Map()) {
    this.file = dataDir === undefined ? undefined : join(dataDir, TRACKER_PINS_FILE);
    for (const [origin, fp] of Object.entries(this.readKept())) this.pins.set(origin, fp);
    // A fingerprint the user gave wins over one seen before: the tracker's certificate was replaced on purpose.
    let changed = false;
    for (const [origin, fp] of given) {
      changed ||= this.pins.get(origin) !== fp;
      this.pins.set(origin, fp);
    }
    if (changed) this.keep();
  }

  get(origin: string): string | undefined {
    return this.pins.get(origin);
  }

  /** A fingerprint a tracker of the cluster listed (it came over a pinned connection). */
  learn(origin: string, fingerprint: string): void {
    if (this.pins.get(origin) === fingerprint) return;
    this.pins.set(origin, fingerprint);
    this.keep();
  }

  /**
   * Checks the certificate of a TLS connection to `origin`, made without
   * rejecting unverified certificates; throws TRACKER_CERT_CHANGED.
   */
  check(origin: string, socket: TLSSocket): void {
    const raw = socket.getPeerCertificate()?.raw;
    if (raw === undefined)
      throw new CoterieError('TRACKER_CERT_CHANGED', `tracker ${origin} sent no certificate`);
    const seen = certificateFingerprint(raw);
    const expected = this.pins.get(origin);
    if (expected === undefined) {
      this.refused.delete(origin);
      if (socket.authorized) return;
      this.pins.set(origin, seen);
      this.keep();
      return;
    }
    if (seen !== expected) {
      const refusal = new CoterieError(
        'TRACKER_CERT_CHANGED',
        `tracker ${origin} presented certificate sha256 ${seen}, not the pinned ${expected}: refused. If its certificate was replaced on purpose, start the peer with its new URL (${origin}#sha256=${seen}) after checking that fingerprint on the tracker`,
        { details: { origin, expected, seen } },
      );
      this.refused.set(origin, refusal);
      throw refusal;
    }
    this.refused.delete(origin);
  }

  /** Why the last connection to `origin` was refused, if it was. */
  refusal(origin: string): CoterieError | undefined {
    return this.refused.get(origin);
  }

  private readKept(): Record<string, string> {
    if (this.file === undefined) return {};
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw new CoterieError('PATH_INVALID', `cannot read ${this.file}: ${(err as Error).message}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    const entries = typeof parsed === 'object' && parsed !== null ? Object.entries(parsed) : [];
    if (
      parsed === undefined ||
      entries.some(([, fp]) => typeof fp !== 'string' || !/^[0-9a-f]{64}$/.test(fp))
    ) {
      // Forgetting the pins would trust whatever answers next: refuse instead.
      throw new CoterieError(
        'PATH_INVALID',
        `${this.file} is damaged: restore it, or remove it to pin each tracker again at the next connection`,
      );
    }
    return Object.fromEntries(entries) as Record<string, string>;
  }

  private keep(): void {
    if (this.file === undefined) return;
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(Object.fromEntries(this.pins), null, 2)}\n`, {
      mode: PRIVATE_FILE_MODE,
    });
    renameSync(tmp, this.file);
  }
}
