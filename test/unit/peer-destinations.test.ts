import { mkdirSync, realpathSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { resolveDestination } from '../../src/peer/paths.js';
import { tempDir } from '../helpers/temp-dir.js';

// download_file's <dest> (src/peer/paths.ts): a directory, or a file in an existing
// directory (a link to a directory is that directory; any other link is refused); resolved to a real path once, with the directory's
// identity kept for the download's later runs.

let root: string;
beforeEach(() => {
  // realpath: the temp directory may itself sit behind a link (macOS /tmp).
  root = realpathSync(tempDir('coterie-dest-').path);
  mkdirSync(join(root, 'dl'));
});

const at = (...p: string[]) => join(root, ...p);
const invalid = (dest: string, message: string | RegExp) =>
  expect(() => resolveDestination(dest, 'movie.mkv')).toThrow(
    expect.objectContaining({ code: 'PATH_INVALID', message: expect.stringMatching(message) }),
  );

describe('resolveDestination', () => {
  it('an existing directory, with or without a trailing slash: the file name in it', () => {
    expect(resolveDestination(at('dl'), 'movie.mkv').path).toBe(at('dl', 'movie.mkv'));
    expect(resolveDestination(`${at('dl')}/`, 'movie.mkv').path).toBe(at('dl', 'movie.mkv'));
  });

  it('a path that does not exist, without a trailing slash: that file, in its existing directory', () => {
    expect(resolveDestination(at('dl', 'film.bin'), 'movie.mkv').path).toBe(at('dl', 'film.bin'));
  });

  it("a file whose directory does not exist: PATH_INVALID 'directory does not exist'", () => {
    invalid(at('nope', 'film.bin'), `^directory does not exist: ${at('nope')}`);
  });

  it("'dir/' that does not exist: PATH_INVALID 'destination directory does not exist: dir'", () => {
    invalid(`${at('newdir')}/`, `^destination directory does not exist: ${at('newdir')}`);
  });

  it("an existing file: DESTINATION_EXISTS; 'file/': PATH_INVALID, not a directory", () => {
    writeFileSync(at('dl', 'old.bin'), 'x');
    expect(() => resolveDestination(at('dl', 'old.bin'), 'movie.mkv')).toThrow(
      expect.objectContaining({ code: 'DESTINATION_EXISTS' }),
    );
    invalid(`${at('dl', 'old.bin')}/`, 'is not a directory');
  });

  it('a destination that is a symbolic link to a directory: that directory, resolved once', () => {
    symlinkSync(at('dl'), at('to-dir'));
    const st = statSync(at('dl'), { bigint: true });
    for (const d of [at('to-dir'), `${at('to-dir')}/`]) {
      const resolved = resolveDestination(d, 'movie.mkv');
      expect(resolved.path).toBe(at('dl', 'movie.mkv'));
      expect(resolved.dir).toEqual({ dev: st.dev.toString(), ino: st.ino.toString() });
    }
  });

  it('a destination that is a symbolic link to a file or to nothing: PATH_INVALID', () => {
    writeFileSync(at('target.bin'), 'x');
    symlinkSync(at('target.bin'), at('to-file'));
    symlinkSync(at('nowhere'), at('dangling'));
    for (const l of ['to-file', 'dangling']) {
      invalid(at(l), 'symbolic link');
      invalid(`${at(l)}/`, 'symbolic link');
    }
  });

  it('a link where the file would go in a destination directory: PATH_INVALID', () => {
    symlinkSync(at('target.bin'), at('dl', 'movie.mkv'));
    invalid(at('dl'), 'symbolic link');
  });

  it("links above the directory are resolved once: the download keeps the real path and the directory's identity", () => {
    symlinkSync(at('dl'), at('shortcut'));
    const d = resolveDestination(at('shortcut', 'film.bin'), 'movie.mkv');
    expect(d.path).toBe(at('dl', 'film.bin'));
    const st = statSync(at('dl'), { bigint: true });
    expect(d.dir).toEqual({ dev: st.dev.toString(), ino: st.ino.toString() });
  });

  it('a file name that is a path is refused', () => {
    for (const name of ['../x', 'a/b', '..', '.']) {
      expect(() => resolveDestination(at('dl'), name)).toThrow(
        expect.objectContaining({ code: 'PATH_INVALID' }),
      );
    }
  });
});
