import { spawn } from 'node:child_process';
import { readDaemonFile } from '../../peer/client.js';
import { CoterieError } from '../../protocol/errors.js';
import { type TicketAnswer, UI_PATHS } from '../../protocol/ui.js';
import { shown } from '../sanitize.js';

/** Where a login link opens by itself: a desktop session (X11 or Wayland). */
function hasDesktop(env: NodeJS.ProcessEnv): boolean {
  return Boolean(env.DISPLAY || env.WAYLAND_DISPLAY);
}

/** A one-time login link from the daemon of DIR, asked with daemon.json's control token. */
export async function askLoginLink(dataDir: string): Promise<TicketAnswer> {
  const info = readDaemonFile(dataDir);
  if (info === undefined) {
    throw new CoterieError('DAEMON_NOT_RUNNING', `no peer daemon runs for ${dataDir}: start 'coterie peer'`);
  }
  if (info.ui === undefined) {
    throw new CoterieError('UNAVAILABLE', 'this daemon runs without its web UI (started with --no-ui)');
  }
  const res = await fetch(`http://${info.ui.host}:${info.ui.port}${UI_PATHS.ticket}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${info.token}` },
  }).catch((err: unknown) => {
    throw new CoterieError('DAEMON_NOT_RUNNING', `the daemon's web UI does not answer: ${String(err)}`);
  });
  const body = (await res.json()) as TicketAnswer | { error: { code: string; message: string } };
  if (!res.ok || 'error' in body) {
    const e = 'error' in body ? body.error : { code: 'INTERNAL', message: `HTTP ${res.status}` };
    throw new CoterieError('UNAVAILABLE', `${e.message} [${e.code}]`);
  }
  return body;
}

/**
 * `coterie ui [--no-open]`: asks the daemon of DIR for a one-time login link
 * to its web UI (with the control token of daemon.json, which only this user
 * can read), prints it, and opens it with xdg-open on a desktop.
 */
export async function runUiCommand(dataDir: string, args: string[], env = process.env): Promise<number> {
  const unknown = args.filter((a) => a !== '--no-open');
  if (unknown.length > 0) {
    process.stderr.write(`coterie: ui takes only --no-open, not '${shown(unknown[0]!)}' [USAGE]\n`);
    return 2;
  }
  try {
    const body = await askLoginLink(dataDir);
    process.stdout.write(`${body.url}\n(one use, within ${Math.round(body.expiresInMs / 60_000)} minutes)\n`);
    if (!args.includes('--no-open') && hasDesktop(env)) {
      const child = spawn('xdg-open', [body.url], { stdio: 'ignore', detached: true });
      child.on('error', () => process.stderr.write('coterie: xdg-open failed: open the link yourself\n'));
      child.unref();
    }
    return 0;
  } catch (err) {
    const e = CoterieError.from(err, 'INTERNAL');
    process.stderr.write(`coterie: ${shown(e.message)} [${e.code}]\n`);
    return 1;
  }
}
