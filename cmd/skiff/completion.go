package main

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/skiffdeploy/skiff/inventory"
	"github.com/urfave/cli/v2"
)

// completeCommand is the hidden command the completion scripts call: `skiff __complete -- WORD…` prints the
// candidates for the last WORD (the one being typed, maybe empty), one per line.
const completeCommand = "__complete"

// completionScripts are what `skiff completion SHELL` prints. Each asks skiff itself for candidates, so that
// they follow the command tree and the inventory (-i, SKIFF_INVENTORY or ./hosts.toml) as they are now.
var completionScripts = map[string]string{
	"bash": `# skiff completion for bash: source it, or put it in /etc/bash_completion.d/skiff
_skiff_complete() {
    local cur="${COMP_WORDS[COMP_CWORD]}" IFS=$'\n'
    COMPREPLY=($(compgen -W "$("${COMP_WORDS[0]}" ` + completeCommand + ` -- "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null)" -- "$cur"))
}
complete -o default -F _skiff_complete skiff
`,
	"zsh": `#compdef skiff
# skiff completion for zsh: put it in a directory of $fpath as _skiff, or source it after compinit
_skiff() {
    local -a candidates
    candidates=("${(@f)$("${words[1]}" ` + completeCommand + ` -- "${(@)words[2,CURRENT]}" 2>/dev/null)}")
    compadd -- "${candidates[@]}"
}
compdef _skiff skiff
`,
	"fish": `# skiff completion for fish: put it in ~/.config/fish/completions/skiff.fish
function __skiff_complete
    set -l tokens (commandline -opc) (commandline -ct)
    $tokens[1] ` + completeCommand + ` -- $tokens[2..-1] 2>/dev/null
end
complete -c skiff -f -a '(__skiff_complete)'
`,
}

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script for bash, zsh or fish (commands, flags, apps, hosts and groups)",
		ArgsUsage: "bash|zsh|fish",
		Description: "bash: source <(skiff completion bash)\n" +
			"zsh:  skiff completion zsh > \"${fpath[1]}/_skiff\"\n" +
			"fish: skiff completion fish > ~/.config/fish/completions/skiff.fish",
		Action: func(c *cli.Context) error {
			script, ok := completionScripts[c.Args().First()]
			if c.NArg() != 1 || !ok {
				return usagef("completion: give one shell: bash, zsh or fish")
			}
			_, err := fmt.Fprint(c.App.Writer, script)
			return err
		},
	}
}

// hiddenCompleteCommand answers the completion scripts.
func hiddenCompleteCommand() *cli.Command {
	return &cli.Command{
		Name:            completeCommand,
		Hidden:          true,
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			words := c.Args().Slice()
			if len(words) > 0 && words[0] == "--" {
				words = words[1:]
			}
			for _, cand := range complete(c.App, words) {
				fmt.Fprintln(c.App.Writer, cand)
			}
			return nil
		},
	}
}

// complete returns the candidates for the last of words (the words after the program name). Errors (no
// inventory, say) only mean fewer candidates.
func complete(app *cli.App, words []string) []string {
	if len(words) == 0 {
		words = []string{""}
	}
	cur, before := words[len(words)-1], words[:len(words)-1]
	flags := newFlagSet(app.Flags)
	allFlags := slices.Clone(app.Flags)
	commands := app.Commands
	var cmd *cli.Command
	inventoryFile := os.Getenv("SKIFF_INVENTORY")
	var positional []string
	for i := 0; i < len(before); i++ {
		w := before[i]
		if isFlag(w) {
			known, needs := flags.lookup(w)
			name := strings.TrimLeft(w, "-")
			if n, v, ok := strings.Cut(name, "="); ok && (n == "i" || n == "inventory") {
				inventoryFile = v
			}
			if known && needs && i+1 < len(before) {
				if name == "i" || name == "inventory" {
					inventoryFile = before[i+1]
				}
				i++
			}
			continue
		}
		if sub := findCommand(commands, w); sub != nil && len(positional) == 0 {
			cmd, commands = sub, sub.Subcommands
			for n, v := range newFlagSet(sub.Flags) {
				flags[n] = v
			}
			allFlags = append(allFlags, sub.Flags...)
			continue
		}
		positional = append(positional, w)
	}
	if inventoryFile == "" {
		inventoryFile = "hosts.toml"
	}
	if len(before) > 0 {
		if prev := before[len(before)-1]; isFlag(prev) && !strings.Contains(prev, "=") {
			if _, needs := flags.lookup(prev); needs {
				return completeValue(strings.TrimLeft(prev, "-"), cur, inventoryFile)
			}
		}
	}
	if strings.HasPrefix(cur, "--hosts=") {
		return prefixed("--hosts=", completeValue("hosts", strings.TrimPrefix(cur, "--hosts="), inventoryFile))
	}
	if strings.HasPrefix(cur, "-") {
		return flagNames(allFlags)
	}
	if len(commands) > 0 && len(positional) == 0 {
		var names []string
		for _, c := range commands {
			if !c.Hidden {
				names = append(names, c.Name)
			}
		}
		return names
	}
	if cmd == nil || len(positional) > 0 {
		return nil
	}
	switch {
	case cmd.Name == "completion":
		return []string{"bash", "fish", "zsh"}
	case strings.Contains(cmd.ArgsUsage, "APP"):
		if inv, err := inventory.Load(inventoryFile); err == nil {
			return slices.Sorted(maps.Keys(inv.Apps))
		}
	}
	return nil
}

// completeValue completes the value of flag: host and group names (comma-separated) for --hosts; nothing
// for the others (the shell completes file names).
func completeValue(flag, cur, inventoryFile string) []string {
	if flag != "hosts" {
		return nil
	}
	inv, err := inventory.Load(inventoryFile)
	if err != nil {
		return nil
	}
	done := ""
	if i := strings.LastIndexByte(cur, ','); i >= 0 {
		done = cur[:i+1]
	}
	return prefixed(done, hostAndGroupNames(inv))
}

// hostAndGroupNames are every host name, group name and "all", sorted.
func hostAndGroupNames(inv *inventory.Inventory) []string {
	seen := map[string]bool{"all": true}
	for name, h := range inv.Hosts {
		seen[name] = true
		for _, g := range h.Groups {
			seen[g] = true
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func prefixed(prefix string, list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = prefix + s
	}
	return out
}

// flagNames are the long (--name) and short (-n) spellings of flags that are not hidden.
func flagNames(flags []cli.Flag) []string {
	var out []string
	for _, f := range flags {
		if v, ok := f.(cli.VisibleFlag); ok && !v.IsVisible() {
			continue
		}
		for _, n := range f.Names() {
			if len(n) == 1 {
				out = append(out, "-"+n)
			} else {
				out = append(out, "--"+n)
			}
		}
	}
	sort.Strings(out)
	return out
}
