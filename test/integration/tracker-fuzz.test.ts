import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/protocol/errors.js';
import { isValidName } from '../../src/protocol/names.js';
import { fakeManifest, randomPeerId, trackerPerFile } from '../helpers/tracker.js';

// Property tests: whatever is thrown at the API, the answer is a coded error
// (or a success), never a 5xx, and the tracker stays up.
const fileTracker = trackerPerFile();
let token: string;
const GROUP = 'fuzz-g';
const good = fakeManifest('fuzz');
const peerId = randomPeerId();

beforeAll(async () => {
  token = await fileTracker.api.user('fuzzer');
  await fileTracker.api.call('POST', '/v1/groups', { token, body: { groupId: GROUP } });
  await fileTracker.api.call('POST', `/v1/groups/${GROUP}/files`, {
    token,
    body: { name: 'base.bin', manifest: good.manifest, peerId },
  });
});

type Err = { error?: { code: string; message: string } };

function expectCoded(r: { status: number; body: unknown }, what: string) {
  expect(r.status, what).toBeLessThan(500);
  if (r.status >= 400) {
    const e = (r.body as Err).error;
    expect(e, what).toBeDefined();
    expect(ERROR_CODES, what).toContain(e!.code);
    expect(e!.message.length, what).toBeGreaterThan(0);
  }
}

const ROUTES_WITH_BODY = [
  '/v1/users',
  '/v1/login',
  '/v1/groups',
  `/v1/groups/${GROUP}/files`,
  `/v1/groups/${GROUP}/files/${good.fileId}/tickets`,
  '/v1/reports',
];

const RUNS = { numRuns: 60 };

describe('API under malformed input', () => {
  it('answers arbitrary JSON bodies with coded 4xx (or a success), never 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...ROUTES_WITH_BODY),
        fc.jsonValue({ maxDepth: 3 }),
        async (path, body) => {
          const r = await fileTracker.api.call('POST', path, { token, raw: JSON.stringify(body) });
          expectCoded(r, `${path} ${JSON.stringify(body).slice(0, 100)}`);
        },
      ),
      RUNS,
    );
  });

  it('answers garbage bytes as a JSON body with 400', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...ROUTES_WITH_BODY),
        fc.string({ minLength: 1, maxLength: 200 }).filter((s) => {
          try {
            JSON.parse(s);
            return false;
          } catch {
            return s.trim() !== '';
          }
        }),
        async (path, raw) => {
          const r = await fileTracker.api.call<Err>('POST', path, { token, raw });
          expect(r.status, raw).toBe(400);
          expect(r.body.error?.code).toBe('BAD_REQUEST');
        },
      ),
      RUNS,
    );
  });

  it('refuses names outside [a-z0-9_.-]{1,64} in paths and bodies', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ minLength: 1, maxLength: 80 }).filter((s) => !isValidName(s)),
        async (name) => {
          const seg = encodeURIComponent(name);
          for (const [method, path, body] of [
            ['POST', `/v1/groups/${seg}/join`, undefined],
            ['GET', `/v1/groups/${seg}/members`, undefined],
            ['GET', `/v1/groups/${seg}/files`, undefined],
            ['POST', `/v1/groups/${GROUP}/requests/${seg}/accept`, undefined],
            ['POST', '/v1/groups', { groupId: name }],
            ['POST', '/v1/users', { userId: name, password: 'long enough' }],
          ] as const) {
            const r = await fileTracker.api.call<Err>(method, path, { token, ...(body ? { body } : {}) });
            expectCoded(r, `${method} ${path} ${JSON.stringify(body)}`);
            expect(r.status, `${method} ${path}`).toBeGreaterThanOrEqual(400);
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it('refuses mutated manifests with 400, never stores them', async () => {
    const field = fc.constantFrom('version', 'size', 'pieceSize', 'pieces');
    const value = fc.oneof(
      fc.integer(),
      fc.double(),
      fc.constantFrom(-1, 0, 2 ** 53, 1e9, 16383, 16385, Number.MAX_SAFE_INTEGER),
      fc.string(),
      fc.array(fc.string({ maxLength: 70 }), { maxLength: 5 }),
      fc.constant(null),
    );
    await fc.assert(
      fc.asyncProperty(field, value, async (k, v) => {
        const manifest = { ...good.manifest, [k]: v };
        const r = await fileTracker.api.call<Err>('POST', `/v1/groups/${GROUP}/files`, {
          token,
          body: { name: `m-${Math.random()}`, manifest, peerId },
        });
        expectCoded(r, `${k}=${JSON.stringify(v)}`);
        if (JSON.stringify(manifest) !== JSON.stringify(good.manifest)) {
          expect([400, 409], `${k}=${JSON.stringify(v)}`).toContain(r.status);
        }
      }),
      RUNS,
    );
    const list = await fileTracker.api.call<{ files: unknown[] }>('GET', `/v1/groups/${GROUP}/files`, {
      token,
    });
    expect(list.body.files).toHaveLength(1);
  });

  it('answers odd paths, methods and headers with coded 4xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'POST', 'DELETE', 'PUT', 'PATCH'),
        fc.webPath(),
        fc.option(fc.string({ maxLength: 40 })),
        async (method, path, auth) => {
          const r = await fileTracker.api.call(method, `/v1${path.startsWith('/') ? '' : '/'}${path}`, {
            ...(auth !== null
              ? { headers: { authorization: `Bearer ${auth.replace(/[^\x21-\x7e]/g, '')}` } }
              : {}),
          });
          expectCoded(r, `${method} ${path}`);
        },
      ),
      RUNS,
    );
    expect((await fileTracker.api.call('GET', '/healthz')).status).toBe(200);
    expect(fileTracker.tracker.proc.exitCode).toBe(null);
  });
});
