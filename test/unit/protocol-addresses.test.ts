import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bracketHost, formatHostPort, parseHostPort } from '../../src/protocol/addresses.js';

const port = fc.integer({ min: 1, max: 65535 });
const host = fc.oneof(fc.ipV4(), fc.ipV6(), fc.domain());

describe('host:port addresses', () => {
  it('parses host:port and [v6]:port, refusing the rest', () => {
    expect(parseHostPort('127.0.0.1:7000')).toEqual({ host: '127.0.0.1', port: 7000 });
    expect(parseHostPort('[::1]:7000')).toEqual({ host: '::1', port: 7000 });
    expect(parseHostPort('seed.example:443')).toEqual({ host: 'seed.example', port: 443 });
    for (const bad of ['x', ':1', 'h:0', 'h:70000', '::1:7000', 'h:12a', '[::1]', '[::1]7000', 'h:'])
      expect(parseHostPort(bad)).toBeUndefined();
  });

  it('brackets IPv6 literals only', () => {
    expect(bracketHost('::1')).toBe('[::1]');
    expect(bracketHost('127.0.0.1')).toBe('127.0.0.1');
    expect(bracketHost('localhost')).toBe('localhost');
    expect(formatHostPort('fe80::1', 80)).toBe('[fe80::1]:80');
    expect(formatHostPort('127.0.0.1', 7070)).toBe('127.0.0.1:7070');
  });

  it('reads back what it writes, IPv4, IPv6 and names alike', () => {
    fc.assert(
      fc.property(host, port, (h, p) => {
        expect(parseHostPort(formatHostPort(h, p))).toEqual({ host: h, port: p });
      }),
    );
  });

  it('writes what a URL reads: the same port, an IPv6 host still bracketed', () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), port, (h, p) => {
        const url = new URL(`http://${formatHostPort(h, p)}/`);
        expect(Number(url.port || 80)).toBe(p);
        expect(url.hostname.startsWith('[')).toBe(h.includes(':'));
        expect(new URL(`http://${bracketHost(h)}/`).hostname).toBe(url.hostname);
      }),
    );
  });
});
