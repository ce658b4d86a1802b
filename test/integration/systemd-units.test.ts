// ops/systemd/: the tracker's system unit and the peer's user unit start a real command with
// flags that exist, and systemd itself finds nothing to say about them (systemd-analyze verify,
// when this machine has it; otherwise the parse alone).
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN } from '../../bench/lib/bin.js';
import { coterie } from '../helpers/cli-harness.js';
import { tempDir } from '../helpers/temp-dir.js';

const UNITS = join(import.meta.dirname, '..', '..', 'ops', 'systemd');
/** Where `npm install -g coterie` puts the launcher; the units name it. */
const INSTALLED = '/usr/local/bin/coterie';
const hasSystemdAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;

/** `[Section]` → key → values (a key may repeat). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section !== null) {
      current = new Map();
      sections.set(section[1]!, current);
      continue;
    }
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
    expect(kv, `not a key=value line: ${line}`).not.toBeNull();
    expect(current, `${line} outside a section`).toBeDefined();
    current!.set(kv![1]!, [...(current!.get(kv![1]!) ?? []), kv![2]!]);
  }
  return sections;
}

const cases = [
  { file: 'coterie-tracker.service', command: 'tracker', user: false },
  { file: 'coterie-peer.service', command: 'peer', user: true },
] as const;

describe('systemd units', () => {
  for (const unit of cases) {
    it(`${unit.file}: ExecStart runs coterie ${unit.command} with flags it has`, async () => {
      const text = readFileSync(join(UNITS, unit.file), 'utf8');
      const service = parseUnit(text).get('Service')!;
      const [execStart] = service.get('ExecStart') ?? [];
      const argv = execStart!.split(/\s+/);
      expect(argv[0]).toBe(INSTALLED);
      expect(argv[1]).toBe(unit.command);
      const help = await coterie([unit.command, '--help']);
      expect(help.code).toBe(0);
      const flags = argv.filter((a) => a.startsWith('--'));
      expect(flags.length).toBeGreaterThan(0);
      for (const flag of flags)
        expect(help.out, `${flag} in coterie ${unit.command} --help`).toContain(`${flag} `);
      if (unit.user) {
        expect(service.get('ExecReload')?.[0]).toContain('-HUP');
      } else {
        for (const [key, value] of [
          ['DynamicUser', 'yes'],
          ['StateDirectory', 'coterie-tracker'],
          ['ProtectSystem', 'strict'],
          ['NoNewPrivileges', 'yes'],
        ]) {
          expect(service.get(key!)?.[0], key).toBe(value);
        }
        expect(execStart).toMatch(/--data-dir \$\{STATE_DIRECTORY\}/);
      }
      // systemd's SIGKILL comes after the daemon's own limit.
      const limit = Number(/--shutdown-timeout (\d+)/.exec(execStart!)![1]);
      expect(Number(service.get('TimeoutStopSec')![0])).toBeGreaterThan(limit);
    }, 60_000);

    it.skipIf(!hasSystemdAnalyze)(`${unit.file}: systemd-analyze verify finds nothing`, () => {
      const dir = tempDir();
      try {
        // The installed launcher replaced by this checkout's (verify checks that it is executable).
        const path = join(dir.path, unit.file);
        writeFileSync(path, readFileSync(join(UNITS, unit.file), 'utf8').replaceAll(INSTALLED, BIN));
        mkdirSync(join(dir.path, 'run'), { mode: 0o700 });
        const r = spawnSync(
          'systemd-analyze',
          [...(unit.user ? ['--user'] : []), 'verify', '--man=no', path],
          {
            encoding: 'utf8',
            timeout: 30_000,
            env: { ...process.env, HOME: dir.path, XDG_RUNTIME_DIR: join(dir.path, 'run') },
          },
        );
        expect(`${r.stdout}${r.stderr}`).toBe('');
        expect(r.status).toBe(0);
      } finally {
        dir.remove();
      }
    });
  }
});
