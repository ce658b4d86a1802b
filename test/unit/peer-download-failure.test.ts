import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDownloads, type DownloadsDeps } from '../../src/peer/files/downloads.js';
import type { Notice, PeerEvent } from '../../src/peer/notices.js';
import { PeerStore } from '../../src/peer/store/index.js';
import type { TrackerHttpClient } from '../../src/peer/tracker/http-client.js';
import { CoterieError } from '../../src/protocol/errors.js';
import { tempDir } from '../helpers/temp-dir.js';
import { fakeManifest } from '../helpers/tracker.js';

/**
 * A download that fails when it resumes (at the next start, nobody waiting on
 * it) goes through the same failDownload() as one the engine failed: the
 * record says why, the user gets a notice, the event stream a downloadFailed.
 * The store is real; the tracker is a misbehaving one, answering getFile with
 * what the test says.
 */

/** A dependency the resume path must not reach before it fails: touching it fails the test. */
const unreachable = <T extends object>(name: string): T =>
  new Proxy({} as T, {
    get: (_t, key) => {
      throw new Error(`${name}.${String(key)} used on the failing resume path`);
    },
  });

function tracker(getFile: () => Promise<unknown>): TrackerHttpClient {
  const client = {
    call: (op: string) => (op === 'getFile' ? getFile() : Promise.reject(new Error(`unexpected call ${op}`))),
  };
  return client as unknown as TrackerHttpClient;
}

describe('a download that fails on resume', () => {
  let dir: string;
  let store: PeerStore;
  let notices: { kind: Notice['kind']; text: string }[];
  let events: PeerEvent[];

  beforeEach(() => {
    dir = tempDir('coterie-dlfail-').path;
    store = new PeerStore(dir);
    store.setSession({ userId: 'bob', token: 't'.repeat(43) });
    notices = [];
    events = [];
  });
  afterEach(() => {
    store.close();
  });

  const downloadsWith = (http: TrackerHttpClient) => {
    const deps: DownloadsDeps = {
      store,
      http,
      session: unreachable('session'),
      identity: unreachable('identity'),
      seeding: unreachable('seeding'),
      shares: unreachable('shares'),
      notify: (kind, text) => notices.push({ kind, text }),
      onEvent: (e) => events.push(e),
      log: pino({ level: 'silent' }),
    };
    return createDownloads(deps);
  };

  const addActive = (fileId: string) =>
    store.downloads.add({
      userId: 'bob',
      groupId: 'films',
      fileName: 'movie.mkv',
      fileId,
      dest: join(dir, 'movie.mkv'),
      size: 300_000,
      startedAt: Date.now(),
    });

  it('a manifest that does not match the file id: failed, with a notice and an event', async () => {
    const wanted = fakeManifest('wanted');
    const other = fakeManifest('other');
    const rec = addActive(wanted.fileId);
    const downloads = downloadsWith(
      tracker(async () => ({
        groupId: 'films',
        fileId: wanted.fileId,
        name: 'movie.mkv',
        manifest: other.manifest,
        sharers: ['alice'],
        seeders: [],
      })),
    );
    await downloads.resumeAll();

    const after = store.downloads.get(rec.id)!;
    expect(after.state).toBe('failed');
    expect(after.error).toMatch(/does not match the file id/);
    expect(after.endedAt).not.toBeNull();
    expect(notices).toEqual([{ kind: 'download', text: `download of 'movie.mkv' failed: ${after.error}` }]);
    expect(events).toEqual([
      { type: 'downloadFailed', id: rec.id, fileName: 'movie.mkv', reason: after.error },
    ]);
    expect(downloads.list().downloads[0]).toMatchObject({ state: 'failed', error: after.error });
  });

  it('a tracker that no longer lists the file: the same notice and event', async () => {
    const rec = addActive(fakeManifest('gone').fileId);
    const downloads = downloadsWith(
      tracker(async () => {
        throw new CoterieError('FILE_NOT_FOUND', "no file 'movie.mkv' in group 'films'");
      }),
    );
    await downloads.resumeAll();

    expect(store.downloads.get(rec.id)).toMatchObject({
      state: 'failed',
      error: "no file 'movie.mkv' in group 'films'",
    });
    expect(notices.map((n) => n.text)).toEqual([
      "download of 'movie.mkv' failed: no file 'movie.mkv' in group 'films'",
    ]);
    expect(events).toEqual([
      {
        type: 'downloadFailed',
        id: rec.id,
        fileName: 'movie.mkv',
        reason: "no file 'movie.mkv' in group 'films'",
      },
    ]);
  });

  it('a tracker that cannot be reached: the download waits, neither failed nor told', async () => {
    const rec = addActive(fakeManifest('later').fileId);
    const downloads = downloadsWith(
      tracker(async () => {
        throw new CoterieError('TRACKER_UNAVAILABLE', 'no tracker answers');
      }),
    );
    await downloads.resumeAll();

    expect(store.downloads.get(rec.id)?.state).toBe('active');
    expect(notices).toEqual([]);
    expect(events).toEqual([]);
  });
});
