import {
  aliasOf,
  COMMANDS,
  type CommandSpec,
  callDaemon,
  findCommand,
  resolveDataDir,
} from '../peer/client.js';
import { CoterieError } from '../protocol/errors.js';
import { takeGlobals } from './globals.js';
import { LIVE } from './live.js';

/**
 * `coterie completion bash|zsh|fish` prints a script that asks `coterie __complete WORDS…` for
 * the candidates of the last word: commands, their options, and the group, file and topic names
 * the running daemon knows. Without a daemon it offers commands and options only; path
 * arguments are left to the shell's own file completion.
 */

/** The process-level subcommands, completed beside the peer commands. */
const SUBCOMMANDS = ['tracker', 'peer', 'demo', 'completion', 'help'];
export const SHELLS = ['bash', 'zsh', 'fish'] as const;

const SCRIPTS: Record<(typeof SHELLS)[number], string> = {
  bash: `# coterie completion for bash: add  eval "$(coterie completion bash)"  to ~/.bashrc
_coterie_complete() {
  local IFS=$'\\n'
  COMPREPLY=($(coterie __complete "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
}
complete -o default -F _coterie_complete coterie
`,
  zsh: `#compdef coterie
# coterie completion for zsh: add  source <(coterie completion zsh)  to ~/.zshrc (after compinit)
_coterie() {
  local -a found
  found=(\${(f)"$(coterie __complete "\${(@)words[2,CURRENT]}" 2>/dev/null)"})
  if (( \${#found} )); then compadd -a found; else _files; fi
}
compdef _coterie coterie
`,
  fish: `# coterie completion for fish: coterie completion fish > ~/.config/fish/completions/coterie.fish
function __coterie_complete
    set -l words (commandline -opc) (commandline -ct)
    set -l found (coterie __complete $words[2..-1] 2>/dev/null)
    if test (count $found) -gt 0
        printf '%s\\n' $found
    else
        __fish_complete_path (commandline -ct)
    end
end
complete -c coterie -f -a '(__coterie_complete)'
`,
};

export function completionScript(shell: string): string {
  if (!(SHELLS as readonly string[]).includes(shell)) {
    throw new CoterieError('USAGE', `no completion for '${shell}': one of ${SHELLS.join(', ')}`);
  }
  return SCRIPTS[shell as (typeof SHELLS)[number]];
}

/** How long completion waits for the daemon before offering nothing: a key press must not hang. */
const DAEMON_WAIT_MS = 1500;

/** The candidates for the last of `words` (the word being typed, maybe empty), one per line. */
export async function complete(words: readonly string[]): Promise<string[]> {
  const cur = words.at(-1) ?? '';
  const before = words.slice(0, -1);
  if (before.at(-1) === '--data-dir') return []; // a directory: the shell's own completion
  const g = takeGlobals(before);
  const [first, ...rest] = g.words;
  const starting = (c: string[]) => [...new Set(c)].filter((x) => x.startsWith(cur));
  if (first === undefined) {
    // Kebab-case aliases only once the word shows a hyphen: one spelling of each command at a time.
    const names = COMMANDS.map((c) => (cur.includes('-') ? aliasOf(c.name) : c.name));
    return starting([...names, ...SUBCOMMANDS]);
  }
  if (first === 'completion') return rest.length === 0 ? starting([...SHELLS]) : [];
  if (first === 'help') return rest.length === 0 ? starting(COMMANDS.map((c) => c.name)) : [];
  const spec = findCommand(first);
  if (spec === undefined) return [];
  if (cur.startsWith('-')) return starting(optionsOf(spec));
  const positional = positionals(spec, rest);
  const kinds = new Set(spec.forms.map((f) => f[positional.length]?.kind));
  const dataDir = resolveDataDir(g.dataDir);
  const ask = async (name: string, args: string[]): Promise<unknown> =>
    callDaemon(dataDir, name, args, { signal: AbortSignal.timeout(DAEMON_WAIT_MS) }).catch(() => undefined);
  // The group a file or topic belongs to: the positional the matching form names group_id.
  const groupOf = () => {
    const form = spec.forms.find((f) => f.length > positional.length && f[0]?.kind === 'group');
    return form === undefined ? undefined : positional[0];
  };
  const out: string[] = [];
  if (kinds.has('group')) {
    const r = (await ask('list_groups', [])) as { groups?: { groupId: string }[] } | undefined;
    out.push(...(r?.groups ?? []).map((x) => x.groupId));
  }
  const group = groupOf();
  if (kinds.has('file_name') && group !== undefined) {
    const r = (await ask('list_files', [group])) as { files?: { name: string }[] } | undefined;
    out.push(...(r?.files ?? []).map((x) => x.name));
  }
  if (kinds.has('topic') && group !== undefined) {
    const r = (await ask('list_topics', [group])) as { topics?: { topic: string }[] } | undefined;
    out.push(...(r?.topics ?? []).map((x) => x.topic));
  }
  return starting(out);
}

function optionsOf(spec: CommandSpec): string[] {
  const live = (LIVE as Record<string, { flag: string }>)[spec.name];
  return [
    ...(spec.flags ?? []).map((f) => `--${f}`),
    ...(spec.options ?? []).map((o) => `--${o}`),
    ...(live === undefined ? [] : [`--${live.flag}`]),
    '--json',
    '--data-dir',
    '--help',
  ];
}

/** The positional words typed so far (an option's value is no positional). */
function positionals(spec: CommandSpec, words: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (w.startsWith('--') && w.length > 2) {
      if ((spec.options ?? []).includes(w.slice(2))) i++;
      continue;
    }
    out.push(w);
  }
  return out;
}
