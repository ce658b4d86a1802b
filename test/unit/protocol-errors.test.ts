import { describe, expect, it } from 'vitest';
import { CoterieError } from '../../src/protocol/errors.js';

describe('CoterieError.from', () => {
  it('passes a CoterieError through unchanged, whatever the fallback', () => {
    const original = new CoterieError('NOT_A_MEMBER', 'join the group first');
    expect(CoterieError.from(original, 'INTERNAL')).toBe(original);
    expect(CoterieError.from(original, 'UNAVAILABLE', (t) => `wrapped: ${t}`)).toBe(original);
  });

  it('gives anything else the fallback code, its text and itself as the cause', () => {
    const cause = new Error('ECONNRESET');
    const e = CoterieError.from(cause, 'UNAVAILABLE');
    expect(e).toBeInstanceOf(CoterieError);
    expect(e.code).toBe('UNAVAILABLE');
    expect(e.message).toBe('ECONNRESET');
    expect(e.cause).toBe(cause);
    expect(CoterieError.from('a thrown string', 'INTERNAL').message).toBe('a thrown string');
    expect(CoterieError.from(undefined, 'INTERNAL').message).toBe('undefined');
  });

  it("says what the caller makes of the text, or the caller's own message", () => {
    const cause = new Error('disk I/O error');
    expect(CoterieError.from(cause, 'PATH_INVALID', (t) => `cannot open x: ${t}; move it away`).message).toBe(
      'cannot open x: disk I/O error; move it away',
    );
    const hidden = CoterieError.from(cause, 'INTERNAL', 'the send failed; it was logged');
    expect(hidden.message).toBe('the send failed; it was logged');
    expect(hidden.cause).toBe(cause);
    expect(hidden.toJSON()).toEqual({
      error: { code: 'INTERNAL', message: 'the send failed; it was logged' },
    });
  });
});
