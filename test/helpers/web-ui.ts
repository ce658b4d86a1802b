import { readDaemonFile } from '../../src/peer/client.js';
import { type TicketAnswer, UI_CSRF_HEADER, UI_PATHS, type UiSessionInfo } from '../../src/protocol/ui.js';

/** A browser-like login to a daemon's web UI over plain HTTP: its base, cookie and CSRF token. */
export interface UiLogin {
  base: string;
  origin: string;
  cookie: string;
  csrf: string;
}

/** A one-time login link, asked with the control token as `coterie ui` does. */
export async function loginLink(dataDir: string): Promise<string> {
  const info = readDaemonFile(dataDir);
  if (info?.ui === undefined) throw new Error(`no web UI in ${dataDir}/daemon.json`);
  const res = await fetch(`http://${info.ui.host}:${info.ui.port}${UI_PATHS.ticket}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${info.token}` },
  });
  if (!res.ok) throw new Error(`ticket refused: ${res.status} ${await res.text()}`);
  return ((await res.json()) as TicketAnswer).url;
}

/** Trades a link for the session cookie, then reads the page's CSRF token. */
export async function uiLogin(dataDir: string): Promise<UiLogin> {
  const link = new URL(await loginLink(dataDir));
  const res = await fetch(link, { redirect: 'manual' });
  if (res.status !== 303) throw new Error(`login refused: ${res.status} ${await res.text()}`);
  const cookie = (res.headers.get('set-cookie') ?? '').split(';')[0]!;
  const session = await fetch(new URL(UI_PATHS.session, link), { headers: { cookie } });
  const { csrf } = (await session.json()) as UiSessionInfo;
  return { base: link.origin, origin: link.origin, cookie, csrf };
}

/** POST a command as the page does; `override` changes or drops (undefined) headers. */
export async function uiCommand(
  login: UiLogin,
  name: string,
  args: string[],
  override: Record<string, string | undefined> = {},
): Promise<{ status: number; body: { ok: boolean; result?: unknown; error?: { code: string } } }> {
  const headers: Record<string, string | undefined> = {
    'content-type': 'application/json',
    origin: login.origin,
    'sec-fetch-site': 'same-origin',
    cookie: login.cookie,
    [UI_CSRF_HEADER]: login.csrf,
    ...override,
  };
  const res = await fetch(`${login.base}${UI_PATHS.command}`, {
    method: 'POST',
    headers: Object.fromEntries(Object.entries(headers).filter(([, v]) => v !== undefined)) as Record<
      string,
      string
    >,
    body: JSON.stringify({ name, args }),
  });
  return { status: res.status, body: (await res.json()) as never };
}
