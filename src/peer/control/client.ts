import { request } from 'node:http';
import {
  type AnswerOf,
  CONTROL_PATH,
  type CommandRequest,
  type CommandResponse,
  type Progress,
  type StreamLine,
} from '../../protocol/control.js';
import { CoterieError } from '../../protocol/errors.js';
import { type DaemonInfo, readDaemonFile } from '../daemon-file.js';

function notRunning(dataDir: string, why: string): CoterieError {
  return new CoterieError(
    'DAEMON_NOT_RUNNING',
    `no peer daemon answers for ${dataDir} (${why}): start one with 'coterie peer --data-dir ${dataDir} --tracker URL'`,
  );
}

export interface CallOptions {
  onProgress?: (p: Progress) => void;
  signal?: AbortSignal;
}

/**
 * Sends one command to the daemon of `dataDir` and returns its result, or
 * throws the daemon's CoterieError (DAEMON_NOT_RUNNING when nobody answers).
 * The result is typed by the command's name (protocol/control.ts); a name
 * known only at run time (the CLI's argv) answers `unknown`.
 */
export async function callDaemon<N extends string>(
  dataDir: string,
  name: N,
  args: string[],
  options: CallOptions = {},
): Promise<AnswerOf<N>> {
  const info = readDaemonFile(dataDir);
  if (info === undefined) throw notRunning(dataDir, 'no daemon.json');
  return callDaemonAt(info, name, args, options, dataDir);
}

export function callDaemonAt<N extends string>(
  info: Pick<DaemonInfo, 'control' | 'token'>,
  name: N,
  args: string[],
  options: CallOptions = {},
  dataDir = '(data dir)',
): Promise<AnswerOf<N>> {
  const stream = options.onProgress !== undefined;
  const body = JSON.stringify({ name, args, stream } satisfies CommandRequest);
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (err: unknown, value?: unknown) => {
      if (settled) return;
      settled = true;
      if (err !== undefined) reject(err);
      // The daemon answers command N with N's result (its run is typed by the same map).
      else resolve(value as AnswerOf<N>);
    };
    const req = request(
      {
        host: info.control.host,
        port: info.control.port,
        method: 'POST',
        path: CONTROL_PATH,
        headers: {
          authorization: `Bearer ${info.token}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
        signal: options.signal,
      },
      (res) => {
        res.setEncoding('utf8');
        let buffered = '';
        let final: CommandResponse | undefined;
        const onLine = (text: string) => {
          if (text.trim() === '') return;
          let v: unknown;
          try {
            v = JSON.parse(text);
          } catch {
            v = undefined;
          }
          // Not JSON, or JSON that is no answer (`null`, a number): whatever holds the port is no daemon of ours.
          if (typeof v !== 'object' || v === null) {
            settle(new CoterieError('INTERNAL', 'the daemon sent an unreadable answer'));
            return;
          }
          const line = v as StreamLine;
          if ('progress' in line) options.onProgress?.(line.progress);
          else final = line;
        };
        res.on('data', (chunk: string) => {
          buffered += chunk;
          if (!stream) return;
          let nl = buffered.indexOf('\n');
          while (nl >= 0) {
            onLine(buffered.slice(0, nl));
            buffered = buffered.slice(nl + 1);
            nl = buffered.indexOf('\n');
          }
        });
        res.on('end', () => {
          onLine(buffered);
          const answer = final as CommandResponse | undefined;
          if (answer === undefined) {
            settle(new CoterieError('INTERNAL', 'the daemon closed the connection without an answer'));
          } else if (answer.ok) settle(undefined, answer.result);
          else settle(CoterieError.fromBody(answer, 'the daemon sent an unreadable error'));
        });
        res.on('error', (err) => settle(notRunning(dataDir, err.message)));
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.name === 'AbortError') settle(new CoterieError('UNAVAILABLE', 'cancelled'));
      else settle(notRunning(dataDir, err.code ?? err.message));
    });
    req.end(body);
  });
}
