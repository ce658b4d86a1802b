import { randomBytes } from 'node:crypto';
import { chmodSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * DIR/daemon.json: how a CLI reaches the daemon of DIR. Written once the
 * daemon is ready, mode 0600 because the token is the only guard of the
 * control API; removed on clean shutdown.
 */
export interface DaemonInfo {
  version: 1;
  pid: number;
  /** The control API, always on loopback. */
  control: { host: string; port: number };
  token: string;
  peerId: string;
  /** Where the piece server listens. */
  serving: { host: string; port: number };
  /** The web UI, on loopback, when it runs (`coterie ui` asks it for a login link). */
  ui?: { host: string; port: number };
  startedAt: string;
}

export const DAEMON_FILE = 'daemon.json';

export function daemonFilePath(dataDir: string): string {
  return join(dataDir, DAEMON_FILE);
}

export function newControlToken(): string {
  return randomBytes(32).toString('base64url');
}

export function writeDaemonFile(dataDir: string, info: DaemonInfo): void {
  const path = daemonFilePath(dataDir);
  const tmp = `${path}.${process.pid}.tmp`;
  // Created 0600 from the start so the token is never readable by others, then renamed atomically.
  writeFileSync(tmp, `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

/** The daemon file, or undefined when absent or unreadable (no daemon ran, or it was half written). */
export function readDaemonFile(dataDir: string): DaemonInfo | undefined {
  let text: string;
  try {
    text = readFileSync(daemonFilePath(dataDir), 'utf8');
  } catch {
    return undefined;
  }
  try {
    const v = JSON.parse(text) as Partial<DaemonInfo>;
    if (
      v.version !== 1 ||
      typeof v.token !== 'string' ||
      typeof v.control?.host !== 'string' ||
      typeof v.control?.port !== 'number'
    ) {
      return undefined;
    }
    return v as DaemonInfo;
  } catch {
    return undefined;
  }
}

/** Removes the daemon file if it is still ours (a newer daemon may have replaced it). */
export function removeDaemonFile(dataDir: string, token: string): void {
  const current = readDaemonFile(dataDir);
  if (current !== undefined && current.token !== token) return;
  rmSync(daemonFilePath(dataDir), { force: true });
}
