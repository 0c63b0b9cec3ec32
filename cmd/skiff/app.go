package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"
)

// globalFlags are accepted before or after the command name; each also reads a SKIFF_* variable.
func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "inventory", Aliases: []string{"i"}, Value: "hosts.toml", EnvVars: []string{"SKIFF_INVENTORY"}, Usage: "inventory `FILE`"},
		&cli.StringFlag{Name: "hosts", EnvVars: []string{"SKIFF_HOSTS"}, Usage: "comma-separated host and group `NAMES` to act on", DefaultText: "all of the app's, or all"},
		&cli.IntFlag{Name: "parallel", EnvVars: []string{"SKIFF_PARALLEL"}, Usage: "`N` hosts in flight at once", DefaultText: "the app's rollout.parallel, or 20"},
		&cli.IntFlag{Name: "max-handshakes", Value: 8, EnvVars: []string{"SKIFF_MAX_HANDSHAKES"}, Usage: "`N` SSH handshakes in flight at once"},
		&cli.BoolFlag{Name: "json", EnvVars: []string{"SKIFF_JSON"}, Usage: "print one JSON object with a result per host"},
		&cli.BoolFlag{Name: "dry-run", EnvVars: []string{"SKIFF_DRY_RUN"}, Usage: "print what would be done and change nothing"},
		&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, EnvVars: []string{"SKIFF_VERBOSE"}, Usage: "log SSH and remote commands to stderr"},
		&cli.StringFlag{Name: "progress", Value: "auto", EnvVars: []string{"SKIFF_PROGRESS"}, Usage: "show each host's progress: `MODE` auto (live on a terminal, plain lines otherwise, none with --json), live, plain or none"},
		&cli.BoolFlag{Name: "accept-new-host-keys", EnvVars: []string{"SKIFF_ACCEPT_NEW_HOST_KEYS"}, Usage: "add unknown host keys to known_hosts (never a changed one)"},
	}
}

// newApp builds the command tree. The io streams are parameters so that tests run the CLI in-process.
func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:                 "skiff",
		Usage:                "agentless SSH-push deploys, checks, rollbacks and image pruning",
		Version:              version,
		HideVersion:          true,
		Reader:               stdin,
		Writer:               stdout,
		ErrWriter:            stderr,
		Flags:                globalFlags(),
		EnableBashCompletion: false,
		ExitErrHandler:       func(*cli.Context, error) {},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usagef("%v", err)
		},
		Commands: []*cli.Command{
			checkCommand(),
			execCommand(),
			inventoryCommand(),
			versionCommand(),
			deployCommand(),
			rollbackCommand(),
			releasesCommand(),
			statusCommand(),
			lockCommand(),
			pruneCommand(),
			cronCommand(),
			serveCommand(),
			envCommand(),
			logsCommand(),
			completionCommand(),
			hiddenCompleteCommand(),
		},
	}
	quietBoolDefaults(app.Flags, app.Commands)
	return app
}

// quietBoolDefaults keeps "(default: false)" out of the help of every switch: a switch is off unless given.
func quietBoolDefaults(flags []cli.Flag, commands []*cli.Command) {
	for _, f := range flags {
		if b, ok := f.(*cli.BoolFlag); ok {
			b.DisableDefaultText = true
		}
	}
	for _, c := range commands {
		quietBoolDefaults(c.Flags, c.Subcommands)
	}
}

// run is main without the process: it returns the exit code instead of exiting.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := newApp(stdin, stdout, stderr)
	args, err := permuteArgs(app, args)
	if err == nil {
		err = app.RunContext(ctx, args)
	}
	if err != nil {
		if _, silent := err.(*reportedError); !silent {
			fmt.Fprintf(stderr, "skiff: %s\n", strings.TrimSpace(err.Error()))
		}
		return exitCode(err)
	}
	return exitOK
}

// reportedError carries an exit code for a failure that has already been printed per host.
type reportedError struct {
	code int
	errs []error
}

func (e *reportedError) Error() string { return fmt.Sprintf("%d host(s) failed", len(e.errs)) }

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print skiff's version",
		Action: func(c *cli.Context) error {
			_, err := fmt.Fprintln(c.App.Writer, "skiff", version)
			return err
		},
	}
}
