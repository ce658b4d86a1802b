import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  CONTROL_PATH,
  type CommandRequest,
  type CommandResponse,
  MAX_CONTROL_BODY_BYTES,
  type Progress,
} from '../../protocol/control.js';
import { CoterieError } from '../../protocol/errors.js';
import { PEER_DEFAULTS } from '../config.js';

export type ExecuteCommand = (
  name: string,
  args: string[],
  io: { onProgress?: (p: Progress) => void; signal?: AbortSignal },
) => Promise<unknown>;

export interface ControlServerOptions {
  token: string;
  execute: ExecuteCommand;
  /** Loopback only: the token is the only guard. */
  host?: string;
  port?: number;
  /** GET /metrics (Prometheus text), behind the same token. */
  metrics?: () => Promise<{ contentType: string; text: string }>;
}

export interface ControlServer {
  readonly host: string;
  readonly port: number;
  stop(): Promise<void>;
}

function tokenMatches(header: string | undefined, token: string): boolean {
  if (header === undefined || !header.startsWith('Bearer ')) return false;
  const given = Buffer.from(header.slice('Bearer '.length));
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** The peer's Prometheus metrics on the control port (Authorization: Bearer <daemon.json's token>). */
export const METRICS_PATH = '/metrics';

function unauthenticated(res: ServerResponse): void {
  sendJson(
    res,
    401,
    errorResponse(new CoterieError('UNAUTHENTICATED', 'wrong or missing control token: read daemon.json')),
  );
}

function toError(err: unknown): CoterieError {
  return CoterieError.from(err, 'INTERNAL', (text) => `internal error: ${text}`);
}

function errorResponse(err: CoterieError): CommandResponse {
  return { ok: false, ...err.toJSON() };
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_CONTROL_BODY_BYTES) {
      throw new CoterieError('BODY_TOO_LARGE', `command larger than ${MAX_CONTROL_BODY_BYTES} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** A command request's shape ({name, args: string[]}), checked: the control API's and the web UI's. */
export function asCommandRequest(v: unknown): CommandRequest {
  const r = v as Partial<CommandRequest> | null;
  if (
    typeof r !== 'object' ||
    r === null ||
    typeof r.name !== 'string' ||
    !Array.isArray(r.args) ||
    !r.args.every((a) => typeof a === 'string')
  ) {
    throw new CoterieError('BAD_REQUEST', 'expected {"name": string, "args": string[]}');
  }
  return { name: r.name, args: r.args as string[], stream: r.stream === true };
}

function parseRequest(text: string): CommandRequest {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new CoterieError('BAD_REQUEST', 'the command body is not JSON');
  }
  return asCommandRequest(v);
}

/** Starts the local control API; resolves once it listens. */
export async function startControlServer(options: ControlServerOptions): Promise<ControlServer> {
  const { token, execute } = options;
  const inflight = new Set<AbortController>();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.url === METRICS_PATH && req.method === 'GET' && options.metrics !== undefined) {
      if (!tokenMatches(req.headers.authorization, token)) return unauthenticated(res);
      const { contentType, text } = await options.metrics();
      res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(text) });
      res.end(text);
      return;
    }
    if (req.url !== CONTROL_PATH)
      return sendJson(res, 404, errorResponse(new CoterieError('NOT_FOUND', 'no such route')));
    if (req.method !== 'POST') {
      return sendJson(res, 405, errorResponse(new CoterieError('BAD_REQUEST', 'use POST')));
    }
    if (!tokenMatches(req.headers.authorization, token)) return unauthenticated(res);
    let request: CommandRequest;
    try {
      request = parseRequest(await readBody(req));
    } catch (err) {
      const e = toError(err);
      return sendJson(res, e.status, errorResponse(e));
    }
    const abort = new AbortController();
    inflight.add(abort);
    // A CLI that goes away (Ctrl-C during --wait) stops waiting, not the download itself.
    res.on('close', () => abort.abort());
    try {
      if (request.stream) {
        res.writeHead(200, { 'content-type': 'application/x-ndjson' });
        const line = (v: unknown) => {
          if (!res.writableEnded) res.write(`${JSON.stringify(v)}\n`);
        };
        try {
          const result = await execute(request.name, request.args, {
            onProgress: (progress) => line({ progress }),
            signal: abort.signal,
          });
          line({ ok: true, result: result ?? null });
        } catch (err) {
          line(errorResponse(toError(err)));
        }
        res.end();
        return;
      }
      try {
        const result = await execute(request.name, request.args, { signal: abort.signal });
        sendJson(res, 200, { ok: true, result: result ?? null });
      } catch (err) {
        const e = toError(err);
        sendJson(res, e.status, errorResponse(e));
      }
    } finally {
      inflight.delete(abort);
    }
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      if (!res.headersSent) sendJson(res, 500, errorResponse(toError(err)));
      else res.end();
    });
  });
  const host = options.host ?? PEER_DEFAULTS.controlHostDefault;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? PEER_DEFAULTS.controlPortDefault, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    host,
    port,
    stop: async () => {
      for (const a of inflight) a.abort();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      // Answers being written get a moment to flush; then whatever is left is cut.
      const timer = setTimeout(() => server.closeAllConnections(), PEER_DEFAULTS.controlCloseGraceMs);
      await closed;
      clearTimeout(timer);
    },
  };
}
