import { existsSync, renameSync, statSync } from 'node:fs';
import { pino } from 'pino';

export interface RotatingLogOptions {
  /** Rotate once the file reaches this many bytes; 0: never (logrotate's job then). */
  maxBytes: number;
  /** Rotated files kept beside it, at least 1: `<path>.1` (newest) … `<path>.<keep>`. */
  keep: number;
}

/** A pino destination writing `path`, rotated by size, reopened on demand (SIGHUP). */
export interface RotatingLog {
  write(line: string): void;
  /** Opens `path` again: after logrotate renamed it, the next lines go to a new file. */
  reopen(): void;
  flush(cb?: (err?: Error) => void): void;
  flushSync(): void;
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/**
 * pino's own destination (sonic-boom), synchronous so a crash's last line lands, with rotation
 * by size in front of it: past `maxBytes` the file becomes `<path>.1`, older ones shift up and
 * the oldest past `keep` is overwritten. Not pino-roll (it names the live file `<name>.N.log`
 * and runs in a worker, asynchronous) nor rotating-file-stream (asynchronous, and no reopen for
 * logrotate): the file keeps its name and a line is on disk when write returns.
 */
export function openRotatingLog(path: string, options: RotatingLogOptions): RotatingLog {
  const dest = pino.destination({ dest: path, sync: true, mkdir: true });
  let size = sizeOf(path);
  const rotate = () => {
    for (let i = options.keep - 1; i >= 1; i--) {
      if (existsSync(`${path}.${i}`)) renameSync(`${path}.${i}`, `${path}.${i + 1}`);
    }
    renameSync(path, `${path}.1`);
    dest.reopen();
    size = 0;
  };
  return {
    write(line) {
      dest.write(line);
      size += Buffer.byteLength(line);
      if (options.maxBytes > 0 && size >= options.maxBytes) rotate();
    },
    reopen() {
      dest.reopen();
      size = sizeOf(path);
    },
    flush: (cb) => dest.flush(cb),
    flushSync: () => dest.flushSync(),
  };
}
