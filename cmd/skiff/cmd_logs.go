package main

import (
	"os"

	"github.com/skiffdeploy/skiff/deploy"
	"github.com/skiffdeploy/skiff/fleet"
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
		Action: func(c *cli.Context) error {
			app, err := appArg(c, "logs")
			if err != nil {
				return err
			}
			if c.Int("lines") < 0 || c.Duration("since") < 0 {
				return usagef("logs: -n and --since must not be negative")
			}
			opts := deploy.LogOptions{Lines: c.Int("lines"), Follow: c.Bool("follow"), Since: c.Duration("since"), Secret: os.Getenv}
			s, err := newSession(c)
			if err != nil {
				return err
			}
			defer s.close()
			s.out.logLines = true
			s.out.follow = opts.Follow
			rep, err := s.engine.Logs(c.Context, fleet.AppRequest{App: app, Hosts: s.hosts}, opts)
			if err != nil {
				return err
			}
			return s.out.logsDone(rep, opts.Follow)
		},
	}
}

// logsDone settles `skiff logs`: without --follow it fails like any command when a host fails; with it, a
// failed host was reported as it failed and the others went on until Ctrl-C, which is a success unless every
// host failed.
func (p *printer) logsDone(rep *fleet.Report, follow bool) error {
	errs := rep.Errs()
	failed := len(nonNil(errs))
	if !follow {
		for _, h := range rep.Hosts {
			if !h.OK {
				p.logf("skiff: %s: logs: %s", h.Host, oneLine(h.Error))
			}
		}
	}
	if failed == 0 || (follow && failed < len(errs)) {
		return nil
	}
	return &reportedError{code: hostsExitCode(errs), errs: nonNil(errs)}
}
