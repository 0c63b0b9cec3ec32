package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/skiffdeploy/skiff/deploy"
	"github.com/urfave/cli/v2"
)

func logsCommand() *cli.Command {
	return &cli.Command{
		Name:      "logs",
		Usage:     "show APP's program or container logs on its hosts, each line prefixed by its host",
		ArgsUsage: "APP",
		Description: "Source apps: the stdout and stderr logs of the app's supervisord programs (through its XML-RPC\n" +
			"API). Image apps: `docker logs` of the service's containers. With -f, new lines of every host are\n" +
			"shown as they arrive until Ctrl-C; a host that goes away is reported and the others are kept.",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "lines", Aliases: []string{"n"}, Value: 100, Usage: "show the last `N` lines of each log first"},
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep showing new lines until Ctrl-C"},
			&cli.DurationFlag{Name: "since", Usage: "only lines of the last `DURATION` (image apps; supervisord logs have no times)", DefaultText: "all"},
		},
		Action: withApp("logs", false, func(c *cli.Context, a *appRun) error {
			if c.Int("lines") < 0 || c.Duration("since") < 0 {
				return usagef("logs: -n and --since must not be negative")
			}
			opts := deploy.LogOptions{Lines: c.Int("lines"), Follow: c.Bool("follow"), Since: c.Duration("since"), Secret: os.Getenv}
			if opts.Since > 0 && a.app.Supervisor.URL != "" {
				return usagef("logs %s: %v", a.app.Name, deploy.ErrSinceUnsupported)
			}
			return a.logs(c.Context, opts)
		}),
	}
}

// logs shows the logs of every host of the run at once. Without --follow it fails like any command when a
// host fails; with it, a failed host is reported and the others go on until ctx ends (Ctrl-C), which is a
// success unless every host failed.
func (a *appRun) logs(ctx context.Context, opts deploy.LogOptions) error {
	out := a.s.out
	emit := func(host, line string) {
		if !out.json {
			out.line(host, "stdout", line)
			return
		}
		out.jsonLine(struct {
			Host string `json:"host"`
			Line string `json:"line"`
		}{host, line})
	}
	errs := deploy.ForEach(ctx, len(a.hosts), len(a.hosts), func(ctx context.Context, i int) error {
		h := a.hosts[i]
		conn, err := a.s.pool.Get(ctx, deploy.Target(a.s.inv, h))
		if err == nil {
			err = deploy.AppLogs(ctx, conn, a.app, opts, func(line string) { emit(h.Name, line) })
		}
		if err != nil && opts.Follow && ctx.Err() == nil {
			out.logf("skiff: %s: logs: %s (still following the other hosts)", h.Name, oneLine(err.Error()))
		}
		return err
	})
	failed := 0
	for i, err := range errs {
		if err == nil {
			continue
		}
		failed++
		if !opts.Follow {
			out.logf("skiff: %s: logs: %s", a.hosts[i].Name, oneLine(err.Error()))
		}
	}
	if failed == 0 || (opts.Follow && failed < len(errs)) {
		return nil
	}
	return &reportedError{code: hostsExitCode(errs), errs: nonNil(errs)}
}

func nonNil(errs []error) []error {
	var out []error
	for _, e := range errs {
		if e != nil {
			out = append(out, e)
		}
	}
	return out
}

// jsonLine writes v as one line of JSON to stdout.
func (p *printer) jsonLine(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.out, "%s\n", b)
}
