package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/skiffdeploy/skiff/deploy"
	"github.com/skiffdeploy/skiff/fleet"
	"github.com/urfave/cli/v2"
)

func checkCommand() *cli.Command {
	return &cli.Command{
		Name:  "check",
		Usage: "reach every selected host: SSH, host key, user, docker/compose, supervisord",
		Action: func(c *cli.Context) error {
			v := func(*session) view {
				return view{summary: func(r *hostResult) string {
					if r.Check == nil {
						return ""
					}
					return factsSummary(r.Check, r.HostKey)
				}}
			}
			return request(c, v, func(ctx context.Context, s *session) (*fleet.Report, error) {
				return s.engine.Check(ctx, s.hosts)
			})
		},
	}
}

func factsSummary(f *deploy.Facts, key string) string {
	parts := []string{"user=" + f.User, fmt.Sprintf("os=%q", f.OS), "key=" + key}
	if f.Docker != "" {
		parts = append(parts, "docker="+f.Docker)
	}
	if f.Compose != "" {
		parts = append(parts, fmt.Sprintf("compose=%q", f.Compose))
	}
	if len(f.Supervisord) > 0 {
		parts = append(parts, "supervisord="+strings.Join(f.Supervisord, ","))
	}
	return strings.Join(parts, " ")
}

func execCommand() *cli.Command {
	return &cli.Command{
		Name:      "exec",
		Usage:     "run a command on the selected hosts",
		ArgsUsage: "-- CMD [ARG…]",
		Action: func(c *cli.Context) error {
			argv := c.Args().Slice()
			if len(argv) == 0 {
				return usagef("exec: no command given (write: skiff exec -- CMD …)")
			}
			v := func(*session) view {
				return view{summary: func(r *hostResult) string {
					if r.ExitStatus == nil {
						return ""
					}
					return fmt.Sprintf("exit %d", *r.ExitStatus)
				}}
			}
			return request(c, v, func(ctx context.Context, s *session) (*fleet.Report, error) {
				return s.engine.Exec(ctx, s.hosts, argv)
			})
		},
	}
}
