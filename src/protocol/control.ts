import type { ErrorBody } from './errors.js';

/**
 * The local control API between `coterie <command>` and its daemon, on
 * 127.0.0.1 only, guarded by the bearer token of DIR/daemon.json.
 *
 *   POST /v1/command  {name, args, stream?}
 *     → 200 {ok: true, result}  or  4xx/5xx {ok: false, error: {code, message}}
 *     with stream: true the body is NDJSON: zero or more {progress} lines, then
 *     the final {ok, …} line (progress bars for hashing and `download_file --wait`).
 */
export const CONTROL_PATH = '/v1/command';
/**
 * Commands are a name and a few words, or a message (at most 64 KiB by
 * default, with room for JSON escapes): anything larger is not ours.
 */
export const MAX_CONTROL_BODY_BYTES = 192 * 1024;

export interface CommandRequest {
  name: string;
  args: string[];
  stream?: boolean;
}

/** A progress report of a long command (hashing a file, a download). */
export interface Progress {
  kind: 'hash' | 'download';
  label: string;
  doneBytes: number;
  totalBytes: number;
  /** Bytes per second over the last few seconds. */
  rateBytesPerSec?: number;
  peers?: number;
}

export type CommandResponse = { ok: true; result: unknown } | ({ ok: false } & ErrorBody);
export type StreamLine = { progress: Progress } | CommandResponse;
