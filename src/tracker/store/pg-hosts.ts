import { CoterieError } from '../../protocol/errors.js';

/**
 * A `--store` URL may name several hosts, as libpq and pg_auto_failover print
 * it: `postgres://u@h1:5432,h2:5432/coterie?target_session_attrs=read-write`.
 * node-postgres connects to one host only, so the URL is split here into one
 * single-host URL per host, tried in order by the primary locator
 * (primary.ts). `target_session_attrs` is what the locator does itself.
 */
export interface PgHost {
  /** `host:port`, for logs and /healthz. */
  name: string;
  /** A single-host URL node-postgres understands. */
  url: string;
}

const DEFAULT_PORT = 5432;
const URL_SHAPE = /^(postgres(?:ql)?:\/\/)(?:([^@/?#]*)@)?([^/?#]*)(.*)$/;

export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//.test(location);
}

export function parsePgHosts(url: string): PgHost[] {
  const m = URL_SHAPE.exec(url);
  if (m === null) throw new CoterieError('USAGE', `invalid store URL '${redactUrl(url)}'`);
  const [, scheme, userinfo, hostList, rest] = m as unknown as [
    string,
    string,
    string | undefined,
    string,
    string,
  ];
  const tail = withoutTargetSessionAttrs(rest);
  const hosts = hostList.split(',').map((entry) => {
    // [v6]:port, [v6], host:port, host
    const v6 = /^(\[[^\]]+\])(?::(\d+))?$/.exec(entry);
    const plain = /^([^:[\]]*)(?::(\d+))?$/.exec(entry);
    const hm = v6 ?? plain;
    if (hm === null || hm[1] === '') {
      throw new CoterieError('USAGE', `invalid host '${entry}' in the store URL '${redactUrl(url)}'`);
    }
    const port = hm[2] === undefined ? DEFAULT_PORT : Number(hm[2]);
    const name = `${hm[1]}:${port}`;
    return { name, url: `${scheme}${userinfo === undefined ? '' : `${userinfo}@`}${name}${tail}` };
  });
  return hosts;
}

/** The path and query without `target_session_attrs` (node-postgres would pass it to the server). */
function withoutTargetSessionAttrs(rest: string): string {
  const q = rest.indexOf('?');
  if (q < 0) return rest;
  const params = rest
    .slice(q + 1)
    .split('&')
    .filter((p) => p !== '' && !p.startsWith('target_session_attrs='));
  return params.length === 0 ? rest.slice(0, q) : `${rest.slice(0, q)}?${params.join('&')}`;
}

/** The URL without its password, for logs (multi-host URLs included). */
export function redactUrl(url: string): string {
  const m = URL_SHAPE.exec(url);
  if (m === null) return 'postgres://…';
  const [, scheme, userinfo, hosts, rest] = m as unknown as [
    string,
    string,
    string | undefined,
    string,
    string,
  ];
  if (userinfo === undefined) return url;
  const colon = userinfo.indexOf(':');
  const user = colon < 0 ? userinfo : `${userinfo.slice(0, colon)}:***`;
  return `${scheme}${user}@${hosts}${rest}`;
}
