// The pieces of the PostgreSQL store's failover that need no server: the
// multi-host URL, and which errors are a failover's (and may be run again).
import { describe, expect, it } from 'vitest';
import {
  duringCommit,
  failoverUnavailable,
  isCommitOutcomeUnknown,
  isFailoverError,
  isRerunnable,
} from '../../src/tracker/store/failover.js';
import { parsePgHosts, redactUrl } from '../../src/tracker/store/pg-hosts.js';

describe('multi-host store URL', () => {
  it('splits the hosts into single-host URLs, default port 5432, without target_session_attrs', () => {
    const hosts = parsePgHosts(
      'postgres://u:pw@db1:5433,db2,[::1]:6000/coterie?target_session_attrs=read-write&sslmode=disable',
    );
    expect(hosts).toEqual([
      { name: 'db1:5433', url: 'postgres://u:pw@db1:5433/coterie?sslmode=disable' },
      { name: 'db2:5432', url: 'postgres://u:pw@db2:5432/coterie?sslmode=disable' },
      { name: '[::1]:6000', url: 'postgres://u:pw@[::1]:6000/coterie?sslmode=disable' },
    ]);
    expect(parsePgHosts('postgresql://h/db?target_session_attrs=read-write')).toEqual([
      { name: 'h:5432', url: 'postgresql://h:5432/db' },
    ]);
  });

  it('refuses an empty host with a usage error', () => {
    expect(() => parsePgHosts('postgres://u@h1,,h2/db')).toThrow(expect.objectContaining({ code: 'USAGE' }));
  });

  it('hides the password of every form', () => {
    expect(redactUrl('postgres://u:secret@h1:5432,h2:5432/db')).toBe('postgres://u:***@h1:5432,h2:5432/db');
    expect(redactUrl('postgres://u@h/db')).toBe('postgres://u@h/db');
  });
});

describe('failover errors', () => {
  it('knows a lost connection, a read-only standby and a shutdown, not a constraint violation', () => {
    expect(isFailoverError(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isFailoverError(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).toBe(true);
    expect(isFailoverError(Object.assign(new Error('read-only'), { code: '25006' }))).toBe(true);
    expect(isFailoverError(Object.assign(new Error('shutdown'), { code: '57P01' }))).toBe(true);
    expect(isFailoverError(Object.assign(new Error('dup'), { code: '23505' }))).toBe(false);
  });

  it('runs again what failed before its commit, never what failed during it', () => {
    const lost = new Error('Connection terminated unexpectedly');
    const before = failoverUnavailable(lost);
    expect(before).toMatchObject({ code: 'UNAVAILABLE', details: { retryAfterSeconds: 1 } });
    expect(isRerunnable(before)).toBe(true);
    const during = duringCommit(lost);
    expect(during).toMatchObject({ code: 'UNAVAILABLE', details: { retryAfterSeconds: 1 } });
    expect(isCommitOutcomeUnknown(during)).toBe(true);
    expect(isRerunnable(during)).toBe(false);
    // Any other error at commit passes unchanged (a serialization failure is retried as before).
    const serialization = Object.assign(new Error('ser'), { code: '40001' });
    expect(duringCommit(serialization)).toBe(serialization);
  });
});
