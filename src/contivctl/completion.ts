// Shell completion for contivctl, generated from its own command tree (so it never falls behind a new
// command or flag): commands and subcommands, each one's flags, and the values of -o/--output. zsh loads the
// same function through bashcompinit.
import type { Command } from 'commander';
import { FORMATS } from './output';

interface Node {
  path: string;
  words: string[];
}

/** Every command's path (its non-flag words) and what may follow it. */
function nodes(cmd: Command, path = ''): Node[] {
  const flags = cmd.options.flatMap((o) => [o.long, o.short].filter((f): f is string => !!f && !o.hidden));
  const words = [...cmd.commands.map((c) => c.name()), ...flags, '--help', ...(path ? [] : ['--version'])];
  return [{ path, words }, ...cmd.commands.flatMap((c) => nodes(c, `${path}/${c.name()}`))];
}

/** Flags that take a value: the word after them is not a command. */
function valueFlags(cmd: Command): string[] {
  const own = cmd.options.filter((o) => o.required || o.optional).flatMap((o) => [o.long, o.short].filter((f): f is string => !!f));
  return [...new Set([...own, ...cmd.commands.flatMap(valueFlags)])];
}

export function bashCompletion(program: Command): string {
  const name = program.name();
  const cases = nodes(program)
    .map((n) => `    ${JSON.stringify(n.path)}) words=${JSON.stringify(n.words.join(' '))} ;;`)
    .join('\n');
  return `# ${name} completion for bash: source <(${name} completion bash)
_${name}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}" path="" skip="" w words
  case "$prev" in
    -o|--output) COMPREPLY=( $(compgen -W ${JSON.stringify(FORMATS.join(' '))} -- "$cur") ); return ;;
  esac
  for w in "\${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
    if [[ -n "$skip" ]]; then skip=""; continue; fi
    case " ${valueFlags(program).join(' ')} " in *" $w "*) skip=1; continue ;; esac
    case "$w" in -*) ;; *) path="$path/$w" ;; esac
  done
  case "$path" in
${cases}
    *) words="" ;;
  esac
  COMPREPLY=( $(compgen -W "$words" -- "$cur") )
}
complete -F _${name} ${name}
`;
}

export function zshCompletion(program: Command): string {
  return `#compdef ${program.name()}
# ${program.name()} completion for zsh: source <(${program.name()} completion zsh)
autoload -U +X bashcompinit && bashcompinit
${bashCompletion(program)}`;
}
