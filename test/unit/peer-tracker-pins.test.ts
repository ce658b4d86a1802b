import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TrackerPins } from '../../src/peer/tracker/pins.js';
import { TrackerPool } from '../../src/peer/tracker/pool.js';
import {
  certificateFingerprint,
  formatTrackerAddress,
  parseTrackerAddress,
  selfSignedFingerprint,
} from '../../src/protocol/tracker-url.js';
import { selfSignedTrackerCert } from '../fixtures/tls-cert.js';
import { tempDir } from '../helpers/temp-dir.js';
import { thrownCode } from '../helpers/wait.js';

const FP = 'ab'.repeat(32);

describe('tracker URLs with a fingerprint', () => {
  it('parses #sha256= (hex, or with colons and capitals) on https only', () => {
    expect(parseTrackerAddress(`https://t1:7070#sha256=${FP}`)).toEqual({
      origin: 'https://t1:7070',
      fingerprint: FP,
    });
    const colons = FP.toUpperCase().match(/../g)!.join(':');
    expect(parseTrackerAddress(`https://t1:7070/#sha256=${colons}`).fingerprint).toBe(FP);
    expect(parseTrackerAddress('127.0.0.1:7070')).toEqual({ origin: 'http://127.0.0.1:7070' });
    expect(formatTrackerAddress({ origin: 'https://t1:7070', fingerprint: FP })).toBe(
      `https://t1:7070#sha256=${FP}`,
    );
    for (const bad of [
      `http://t1:7070#sha256=${FP}`,
      'https://t1:7070#sha256=abc',
      `https://t1:7070#md5=${FP}`,
      'ftp://t1',
      'https://',
    ]) {
      expect(
        thrownCode(() => parseTrackerAddress(bad)),
        bad,
      ).toBe('USAGE');
    }
  });
});

describe('TrackerPins', () => {
  const dir = tempDir('coterie-pins-');
  let server: tls.Server;
  let port = 0;
  let fingerprint = '';
  const connect = () =>
    new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false });
      s.once('secureConnect', () => resolve(s));
      s.once('error', reject);
    });

  beforeAll(async () => {
    const { certPem, keyPem } = await selfSignedTrackerCert();
    fingerprint = certificateFingerprint(certPem);
    expect(selfSignedFingerprint(certPem)).toBe(fingerprint);
    server = tls.createServer({ cert: certPem, key: keyPem }, (s) => s.end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    dir.remove();
  });

  it('pins at first use, keeps it 0600 in the data directory, and refuses another certificate', async () => {
    const origin = `https://127.0.0.1:${port}`;
    const pins = new TrackerPins(dir.path);
    const s = await connect();
    pins.check(origin, s);
    s.destroy();
    const file = join(dir.path, 'tracker-pins.json');
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ [origin]: fingerprint });
    expect(statSync(file).mode & 0o777).toBe(0o600);

    // Another process of the same peer, told another fingerprint for that tracker: it wins, and is enforced.
    const told = new TrackerPins(dir.path, new Map([[origin, FP]]));
    const again = await connect();
    expect(thrownCode(() => told.check(origin, again))).toBe('TRACKER_CERT_CHANGED');
    again.destroy();
    expect(told.refusal(origin)?.details).toMatchObject({ expected: FP, seen: fingerprint });
  });

  it('learns the fingerprints a cluster lists through the pool, before failing over', () => {
    const pins = new TrackerPins(undefined);
    const pool = new TrackerPool(['https://t1:7070'], { pins });
    pool.learn([
      { url: 'https://t2:7071', fingerprint: FP, sessions: 0, requestsPerSecond: 0 },
      { url: 'https://t1:7070', sessions: 1, requestsPerSecond: 0 },
    ]);
    expect(pins.get('https://t2:7071')).toBe(FP);
    expect(pins.get('https://t1:7070')).toBeUndefined();
  });

  it('refuses a damaged pins file instead of forgetting the pins', () => {
    const damaged = tempDir('coterie-pins-bad-');
    try {
      writeFileSync(join(damaged.path, 'tracker-pins.json'), '{"https://t1:7070": "nope"}');
      expect(thrownCode(() => new TrackerPins(damaged.path))).toBe('PATH_INVALID');
    } finally {
      damaged.remove();
    }
  });
});
