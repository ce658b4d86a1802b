import { describe, expect, it } from 'vitest';
import { getCommand, parseArgs } from '../../src/peer/control/commands.js';
import {
  assertNewName,
  isNewFileName,
  isNewName,
  isValidFileName,
  isValidName,
} from '../../src/protocol/names.js';
import { thrownCode } from '../helpers/wait.js';

const BIDI = ['\u202a', '\u202b', '\u202c', '\u202d', '\u202e', '\u2066', '\u2067', '\u2068', '\u2069'];
const MARKS = ['\u200e', '\u200f', '\u061c'];

describe('names being created', () => {
  it('refuse dots only and a leading dash; names stored before still pass the lookup check', () => {
    for (const bad of ['.', '..', '...', '-', '-rf', '--help', '-.']) {
      expect(isNewName(bad), bad).toBe(false);
      expect(thrownCode(() => assertNewName('group id', bad))).toBe('INVALID_NAME');
      expect(isValidName(bad), bad).toBe(true); // an existing group of that name is still found
    }
    for (const good of ['films', 'a.b', '.hidden', 'x-', 'a..b', '_', 'v1.2-rc'])
      expect(isNewName(good), good).toBe(true);
    expect(thrownCode(() => assertNewName('topic', 'Bad!'))).toBe('INVALID_NAME');
  });

  it('refuse bidirectional controls and C1 controls in new file names, and still resolve old ones', () => {
    for (const c of [...BIDI, ...MARKS, '\u0085', '\u009b']) {
      const name = `report${c}fdp.exe`;
      expect(isNewFileName(name), JSON.stringify(name)).toBe(false);
      expect(isValidFileName(name)).toBe(true);
    }
    expect(isNewFileName('café 東京 👩‍👩‍👧.mkv')).toBe(true);
    expect(isNewFileName('a\x1bb')).toBe(false);
  });

  it('are checked by the CLI before any daemon is asked: create_group, create_topic, create_user', () => {
    expect(thrownCode(() => parseArgs(getCommand('create_group'), ['..']))).toBe('INVALID_NAME');
    expect(thrownCode(() => parseArgs(getCommand('create_group'), ['-x']))).toBe('INVALID_NAME');
    expect(thrownCode(() => parseArgs(getCommand('create_topic'), ['films', '...']))).toBe('INVALID_NAME');
    expect(thrownCode(() => parseArgs(getCommand('create_user'), ['-bob', 'password1']))).toBe(
      'INVALID_NAME',
    );
    // Lookups of names made before the rule keep working.
    expect(thrownCode(() => parseArgs(getCommand('join_group'), ['..']))).toBeUndefined();
    expect(thrownCode(() => parseArgs(getCommand('list_topics'), ['-x']))).toBeUndefined();
    expect(
      thrownCode(() => parseArgs(getCommand('download_file'), ['films', 'a\u202eb', '/tmp/x'])),
    ).toBeUndefined();
  });
});
