/**
 * Host:port, as peers announce the addresses they serve on and as URLs name
 * a tracker: one spelling everywhere, so what one process writes the next
 * one reads. An IPv6 literal goes in brackets ("[::1]:7000"), since its own
 * colons would otherwise run into the port's.
 */
export interface HostPort {
  host: string;
  port: number;
}

/** The host as it goes before ":port" or in a URL: an IPv6 literal bracketed, anything else as it is. */
export function bracketHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** "host:port", or "[v6]:port" for an IPv6 host. */
export function formatHostPort(host: string, port: number): string {
  return `${bracketHost(host)}:${port}`;
}

/**
 * Reads "host:port" or "[v6]:port"; undefined for anything else: no port, a
 * port outside 1–65535, or an unbracketed IPv6 literal (which of its colons
 * would start the port?).
 */
export function parseHostPort(address: string): HostPort | undefined {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(address) ?? /^([^:]+):(\d+)$/.exec(address);
  if (m === null) return undefined;
  const port = Number(m[2]);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) return undefined;
  return { host: m[1]!, port };
}
