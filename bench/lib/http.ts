// The one HTTP client of the tests and the benchmarks: a request to a tracker's
// API over http or https (with a CA, or the pinned self-signed certificate), JSON in and out.
import http from 'node:http';
import https from 'node:https';
import { pinnedConnection } from './tracker-pins.js';

export interface Reply<T = Record<string, unknown>> {
  status: number;
  body: T;
  headers: http.IncomingHttpHeaders;
  text: string;
}

export interface RequestOptions {
  token?: string;
  body?: unknown;
  /** Sent as is instead of JSON-encoding `body`. */
  raw?: string | Buffer;
  headers?: Record<string, string>;
  ca?: string;
}

/** One HTTP(S) request; resolves with status and parsed JSON body (or text). */
export function request<T = Record<string, unknown>>(
  base: string,
  method: string,
  path: string,
  options: RequestOptions = {},
): Promise<Reply<T>> {
  const url = new URL(path, base);
  const payload =
    options.raw !== undefined
      ? options.raw
      : options.body === undefined
        ? undefined
        : JSON.stringify(options.body);
  const headers: Record<string, string> = { ...options.headers };
  if (payload !== undefined && headers['content-type'] === undefined)
    headers['content-type'] = 'application/json';
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  const lib = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    // A fresh agent per request (no kept-alive sockets), connecting through the pin when there is one.
    const { createConnection } = options.ca === undefined ? pinnedConnection(base) : {};
    const agent =
      createConnection === undefined ? false : Object.assign(new https.Agent(), { createConnection });
    const req = lib.request(url, { method, headers, ca: options.ca, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // not JSON (e.g. /metrics)
        }
        resolve({ status: res.statusCode ?? 0, body: body as T, headers: res.headers, text });
      });
      res.on('error', reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`timeout on ${method} ${path}`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** request() in positional form: `api(base, 'POST', '/v1/groups', { groupId }, token)`. */
export function api<T = Record<string, unknown>>(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  token?: string,
): Promise<Reply<T>> {
  return request<T>(base, method, path, {
    ...(token === undefined ? {} : { token }),
    ...(body === undefined ? {} : { body }),
  });
}

/** request() for set-up steps that must succeed: a 4xx/5xx answer throws with its body. */
export async function call<T = Record<string, unknown>>(
  base: string,
  method: string,
  path: string,
  token?: string,
  body?: unknown,
): Promise<T> {
  const r = await api<T>(base, method, path, body, token);
  if (r.status >= 400) throw new Error(`${method} ${path}: ${r.status} ${r.text}`);
  return r.body;
}

/** A client bound to one tracker. */
export type TrackerClient = ReturnType<typeof client>;

export function client(base: string, ca?: string) {
  const call = <T = Record<string, unknown>>(method: string, path: string, options: RequestOptions = {}) =>
    request<T>(base, method, path, { ...(ca ? { ca } : {}), ...options });
  return {
    call,
    /** Creates the user (it must be new) and logs in; returns the token. */
    async user(userId: string, password = 'correct horse battery'): Promise<string> {
      const c = await call('POST', '/v1/users', { body: { userId, password } });
      if (c.status !== 201) throw new Error(`create user ${userId}: ${c.status} ${c.text}`);
      const l = await call<{ token: string }>('POST', '/v1/login', { body: { userId, password } });
      if (l.status !== 200) throw new Error(`login ${userId}: ${l.status} ${l.text}`);
      return l.body.token;
    },
  };
}

/** Creates the user if it is not there yet and logs in; returns the token. */
export async function userToken(
  base: string,
  userId: string,
  password = `${userId}-password`,
): Promise<string> {
  await request(base, 'POST', '/v1/users', { body: { userId, password } });
  return (await call<{ token: string }>(base, 'POST', '/v1/login', undefined, { userId, password })).token;
}
