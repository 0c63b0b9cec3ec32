package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

// flagSet knows which flag names exist at one level of the command tree and whether they take a value.
type flagSet map[string]bool // name -> takes a value

func newFlagSet(flags []cli.Flag) flagSet {
	fs := flagSet{"help": false, "h": false}
	for _, f := range flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			fs[n] = !isBool
		}
	}
	return fs
}

// lookup reports whether tok is a flag of the set and whether the next token is its value.
func (fs flagSet) lookup(tok string) (known, needsValue bool) {
	name := strings.TrimLeft(tok, "-")
	if i := strings.IndexByte(name, '='); i >= 0 {
		_, ok := fs[name[:i]]
		return ok, false
	}
	v, ok := fs[name]
	return ok, ok && v
}

func isFlag(tok string) bool { return len(tok) > 1 && tok[0] == '-' && tok != "--" }

// permuteArgs moves every flag in front of the positional arguments of its command, because urfave/cli/v2
// silently stops parsing flags at the first positional argument: `skiff deploy api --tag v2` would otherwise
// deploy without the tag. Global flags are accepted anywhere. Everything after `--` is left as it is. An
// unknown flag is a usage error instead of being passed on as an argument.
func permuteArgs(app *cli.App, args []string) ([]string, error) {
	if len(args) == 0 {
		return args, nil
	}
	global := newFlagSet(app.Flags)
	var globals, rest []string
	i := 1
	// Global section: flags up to the command name.
	for i < len(args) && isFlag(args[i]) {
		known, needs := global.lookup(args[i])
		if !known {
			return nil, unknownf("unknown flag %s", args[i])
		}
		globals = append(globals, args[i])
		if needs && i+1 < len(args) {
			globals = append(globals, args[i+1])
			i++
		}
		i++
	}
	if i >= len(args) {
		return append([]string{args[0]}, globals...), nil
	}
	cmds := app.Commands
	var path []string
	for i < len(args) {
		cmd := findCommand(cmds, args[i])
		if cmd == nil {
			if name := args[i]; len(path) == 0 && name != "help" && name != "h" {
				return nil, unknownf("unknown command %q", name)
			}
			break
		}
		path = append(path, args[i])
		i++
		local := newFlagSet(cmd.Flags)
		var flags, positional, tail []string
		for ; i < len(args); i++ {
			tok := args[i]
			if tok == "--" {
				tail = args[i:]
				i = len(args)
				break
			}
			if !isFlag(tok) {
				if len(positional) == 0 && len(cmd.Subcommands) > 0 && findCommand(cmd.Subcommands, tok) != nil {
					break
				}
				positional = append(positional, tok)
				continue
			}
			set := &flags
			known, needs := local.lookup(tok)
			if !known {
				if known, needs = global.lookup(tok); !known {
					return nil, unknownf("unknown flag %s for %s", tok, strings.Join(path, " "))
				}
				set = &globals
			}
			*set = append(*set, tok)
			if needs && i+1 < len(args) {
				*set = append(*set, args[i+1])
				i++
			}
		}
		if len(cmd.Subcommands) > 0 && cmd.Action == nil && len(positional) > 0 {
			return nil, unknownf("unknown command %q for %s", positional[0], strings.Join(path, " "))
		}
		rest = append(rest, path[len(path)-1])
		rest = append(rest, flags...)
		if len(positional) > 0 || len(tail) > 0 {
			rest = append(rest, "--")
			rest = append(rest, positional...)
			if len(tail) > 0 {
				rest = append(rest, tail[1:]...)
			}
		}
		if i >= len(args) || len(cmd.Subcommands) == 0 {
			break
		}
		cmds = cmd.Subcommands
	}
	rest = append(rest, args[i:]...)
	out := append([]string{args[0]}, globals...)
	return append(out, rest...), nil
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// usageLine is printed with an unknown command or flag.
const usageLine = "usage: skiff [-i FILE] [--hosts LIST] [--parallel N] [--json] [--dry-run] [-v] COMMAND [ARGS]; `skiff help` lists the commands"

// unknownf is the usage error of an unknown command or flag, followed by the usage line.
func unknownf(format string, args ...any) error {
	return usagef("%s\n%s", fmt.Sprintf(format, args...), usageLine)
}
