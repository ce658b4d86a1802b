import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { type TObject, type TSchema, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { type Command, Option } from 'commander';
import { parse as parseToml } from 'smol-toml';
import { CoterieError } from '../protocol/errors.js';

/**
 * The layers of a daemon's settings: flags > COTERIE_* environment > `--config FILE` > defaults.
 * Every option of the command gets an environment variable (commander lists it in `--help` and
 * reads it; an empty one counts as unset); the file's keys are the flags' names (`data-dir`,
 * `port`, `shell = false` for `--no-shell`), checked by a TypeBox schema made from the options,
 * and its values then go through the same parsing as the flags' (a bad port is the same USAGE
 * error whether typed or written in the file).
 */

/** The key of an option in a config file: its flag's name, without `--` and `no-`. */
function keyOf(option: Option): string {
  return option.attributeName().replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** An option without a value: `--wait`, `--no-shell`. */
function isFlag(o: Option): boolean {
  return !o.required && !o.optional;
}

/** A boolean option (`--no-shell`) takes true/false in a file, the others a string or a number. */
function schemaOf(options: readonly Option[]): TObject {
  const props: Record<string, TSchema> = {};
  for (const o of options) {
    props[keyOf(o)] = Type.Optional(isFlag(o) ? Type.Boolean() : Type.Union([Type.String(), Type.Number()]));
  }
  return Type.Object(props, { additionalProperties: false });
}

function readConfig(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new CoterieError('USAGE', `cannot read --config ${path}: ${(err as Error).message}`);
  }
  try {
    return extname(path).toLowerCase() === '.json' ? JSON.parse(text) : parseToml(text);
  } catch (err) {
    const kind = extname(path).toLowerCase() === '.json' ? 'JSON' : 'TOML';
    throw new CoterieError(
      'USAGE',
      `--config ${path} is no valid ${kind}: ${(err as Error).message.split('\n')[0]}`,
    );
  }
}

/**
 * Gives every option of `cmd` its environment variable (`names` for those that keep an older
 * name, else PREFIX_FLAG_NAME), adds `--config FILE`, and fills, before the action runs, each
 * option neither typed nor set in the environment from the file.
 */
export function layerSettings(cmd: Command, prefix: string, names: Record<string, string> = {}): Command {
  const envOf = (o: Option) => names[keyOf(o)] ?? `${prefix}_${keyOf(o).toUpperCase().replaceAll('-', '_')}`;
  const settable = [...cmd.options];
  for (const o of settable) {
    o.env(envOf(o));
    // Commander listens for an option's variable only when it is known as the option is added:
    // these were added before, so the listener is ours (a flag's variable, set at all, sets it).
    cmd.on(`optionEnv:${o.name()}`, (value?: string) => {
      const flagValue = o.negate ? false : value === undefined ? true : value;
      cmd.setOptionValueWithSource(o.attributeName(), flagValue, 'env');
    });
  }
  cmd.addOption(
    new Option('--config <file>', 'read settings from this TOML or JSON file (keys: the flag names)').env(
      `${prefix}_CONFIG`,
    ),
  );
  const schema = schemaOf(settable);
  cmd.hook('preAction', (command) => {
    for (const o of settable) {
      const key = o.attributeName();
      // An empty variable is an unset one (as `FOO= coterie …` means in scripts).
      if (command.getOptionValueSource(key) === 'env' && command.getOptionValue(key) === '') {
        command.setOptionValueWithSource(key, o.defaultValue, 'default');
      }
    }
    const path = command.getOptionValue('config') as string | undefined;
    if (path === undefined || path === '') return;
    const file = readConfig(path);
    if (!Value.Check(schema, file)) {
      const first = [...Value.Errors(schema, file)][0];
      const where = first?.path === '' || first === undefined ? 'the file' : first.path.slice(1);
      const why =
        first === undefined
          ? 'not an object of settings'
          : first.message.startsWith('Unexpected property')
            ? `not a setting of ${command.name()} (the keys are its flags' names)`
            : first.message.toLowerCase();
      throw new CoterieError('USAGE', `--config ${path}: ${where}: ${why}`);
    }
    for (const o of settable) {
      const key = o.attributeName();
      const value = (file as Record<string, unknown>)[keyOf(o)];
      const source = command.getOptionValueSource(key);
      if (value === undefined || (source !== undefined && source !== 'default')) continue;
      command.setOptionValueWithSource(key, typeof value === 'boolean' ? value : String(value), 'config');
    }
  });
  return cmd;
}
