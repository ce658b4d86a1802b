import type { UiFrame } from '../../src/peer/ui/frames.js';
import type { CommandName, ControlCommands } from '../../src/protocol/control.js';
import { UI_CSRF_HEADER, UI_PATHS, type UiSessionInfo } from '../../src/protocol/ui.js';

/** A refusal as the CLI prints it: its code and its message. */
export class UiError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

let session: UiSessionInfo | undefined;

/** The page's session (its CSRF token), or undefined when the browser holds no login. */
export async function loadSession(): Promise<UiSessionInfo | undefined> {
  const res = await fetch(UI_PATHS.session, { credentials: 'same-origin' });
  if (!res.ok) return undefined;
  session = (await res.json()) as UiSessionInfo;
  return session;
}

async function post(path: string, body: unknown): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(path, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', [UI_CSRF_HEADER]: session?.csrf ?? '' },
      body: JSON.stringify(body),
    });
  } catch (err) {
    throw new UiError('UNAVAILABLE', `the daemon does not answer (${(err as Error).message})`);
  }
  const answer = (await res.json().catch(() => undefined)) as
    | { ok: true; result: unknown }
    | { ok: false; error: { code: string; message: string } }
    | undefined;
  if (answer === undefined) throw new UiError('INTERNAL', `HTTP ${res.status} without an answer`);
  if (!answer.ok) throw new UiError(answer.error.code, answer.error.message);
  return answer.result;
}

/** Runs one command of the control API: the same name and words as `coterie <command>`. */
export function run<K extends CommandName>(name: K, args: string[]): Promise<ControlCommands[K]['result']> {
  return post(UI_PATHS.command, { name, args }) as Promise<ControlCommands[K]['result']>;
}

export async function endSession(): Promise<void> {
  await post(UI_PATHS.logout, {});
}

/**
 * The event socket: frames in order, reconnecting with the last sequence
 * number seen (the daemon replays what was missed, or sends a snapshot).
 */
export function followEvents(onFrame: (f: UiFrame) => void, onState: (connected: boolean) => void): void {
  let lastSeq = -1;
  let delay = 250;
  const open = () => {
    const url = new URL(UI_PATHS.events, location.href);
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    url.searchParams.set('since', String(lastSeq));
    const ws = new WebSocket(url);
    ws.onopen = () => {
      delay = 250;
      onState(true);
    };
    ws.onmessage = (m) => {
      const frame = JSON.parse(String(m.data)) as UiFrame;
      if (frame.kind === 'event' || frame.kind === 'snapshot') lastSeq = frame.seq;
      onFrame(frame);
    };
    ws.onclose = () => {
      onState(false);
      setTimeout(open, delay);
      delay = Math.min(delay * 2, 5000);
    };
  };
  open();
}
