import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { coterie, startProcess, stop } from '../helpers/cli-harness.js';
import { tempDir } from '../helpers/temp-dir.js';

/** flags > COTERIE_* environment > --config FILE > defaults, through the real `coterie tracker`. */
describe('daemon settings from flags, environment and a config file', () => {
  const scratch = tempDir('coterie-config-');
  afterAll(() => scratch.remove());
  const root = scratch.path;
  const toml = join(root, 'tracker.toml');
  // The file's port (0) beats the default (7070); its data-dir is overridden layer by layer.
  writeFileSync(toml, `port = 0\ndata-dir = "${join(root, 'from-file')}"\nscrypt-log-n = 10\n`);

  /** Starts `coterie tracker …` with `env`, stops it, and says which data directory it used. */
  const dataDirUsed = async (args: string[], env: NodeJS.ProcessEnv) => {
    const saved = { ...process.env };
    // HOME too: a tracker that missed every layer must not make ~/.coterie/tracker.
    Object.assign(process.env, { HOME: root, ...env });
    try {
      const t = await startProcess(
        ['tracker', ...args],
        /listening on https:\/\/127\.0\.0\.1:\d+/,
        join(root, 'log'),
      );
      expect(t.line).not.toContain(':7070');
      expect(await stop(t.child)).toBe(0);
    } finally {
      for (const k of ['HOME', ...Object.keys(env)]) delete process.env[k];
      Object.assign(process.env, saved);
    }
    return ['from-file', 'from-env', 'from-flag'].filter((d) => existsSync(join(root, d, 'tracker.key')));
  };

  it('takes the file over the defaults, the environment over the file and a flag over both', async () => {
    expect(await dataDirUsed(['--config', toml], {})).toEqual(['from-file']);
    const env = { COTERIE_TRACKER_DATA_DIR: join(root, 'from-env') };
    expect(await dataDirUsed(['--config', toml], env)).toEqual(['from-file', 'from-env']);
    const flag = ['--config', toml, '--data-dir', join(root, 'from-flag')];
    expect(await dataDirUsed(flag, env)).toEqual(['from-file', 'from-env', 'from-flag']);
    // The config file itself may come from the environment; an empty variable is an unset one.
    const viaEnv = { COTERIE_TRACKER_CONFIG: toml, COTERIE_TRACKER_DATA_DIR: '' };
    expect(await dataDirUsed([], viaEnv)).toEqual(['from-file', 'from-env', 'from-flag']);
  }, 90_000);

  it('checks a file the way it checks flags, and names the env variables in --help', async () => {
    const json = join(root, 'bad.json');
    for (const [content, says] of [
      ['{"port": "x"}', "--port must be an integer between 0 and 65535, not 'x'"],
      ['{"bogus": 1}', `--config ${json}: bogus: not a setting of tracker`],
      ['{"port": [1]}', `--config ${json}: port:`],
      ['{"port": ', `--config ${json} is no valid JSON`],
    ] as const) {
      writeFileSync(json, content);
      const r = await coterie(['tracker', '--config', json], { env: { HOME: root } });
      expect(r.code, content).toBe(2);
      expect(r.err, content).toContain(says);
      expect(r.err, content).toContain('[USAGE]');
    }
    const peer = join(root, 'peer.toml');
    writeFileSync(peer, 'shell = "no"\n');
    const r = await coterie(['peer', '--config', peer, '--data-dir', join(root, 'p')]);
    expect(r).toMatchObject({ code: 2 });
    expect(r.err).toContain(`--config ${peer}: shell:`);
    const help = await coterie(['tracker', '--help']);
    expect(help.out).toContain('COTERIE_TRACKER_HEARTBEAT_INTERVAL_MS');
    expect((await coterie(['peer', '--help'])).out).toContain('COTERIE_PEER_UPLOAD_LIMIT_KIB');
  });
});
