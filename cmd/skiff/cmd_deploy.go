package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/skiffdeploy/skiff/deploy"
	"github.com/skiffdeploy/skiff/fleet"
	"github.com/urfave/cli/v2"
)

// request runs one request of the fleet engine for a command and prints its results the way v says.
func request(c *cli.Context, v func(s *session) view, fn func(ctx context.Context, s *session) (*fleet.Report, error)) error {
	s, err := newSession(c)
	if err != nil {
		return err
	}
	defer s.close()
	s.out.show(v(s))
	rep, err := fn(c.Context, s)
	return s.out.finish(rep, err)
}

// appArg is the one APP argument of a command.
func appArg(c *cli.Context, command string) (string, error) {
	if c.NArg() != 1 {
		return "", usagef("%s: give exactly one APP (got %d arguments)", command, c.NArg())
	}
	return c.Args().First(), nil
}

// outcomeView shows deploys and rollbacks.
func outcomeView(s *session) view {
	return view{summary: func(r *hostResult) string {
		sum := outcomeSummary(r.Outcome)
		if s.dryRun {
			sum = "would go " + sum
		}
		return sum
	}}
}

func outcomeSummary(o *deploy.Outcome) string {
	if o == nil {
		return ""
	}
	if o.Image != nil {
		return imageSummary(o)
	}
	var b strings.Builder
	if o.Before == o.After {
		fmt.Fprintf(&b, "%s (unchanged)", orDash(o.After))
	} else {
		fmt.Fprintf(&b, "%s -> %s", orDash(o.Before), orDash(o.After))
	}
	if o.Files > 0 || o.Reused > 0 {
		fmt.Fprintf(&b, "  sent %d file(s), %s, reused %d", o.Files, deploy.HumanSize(o.Bytes), o.Reused)
	}
	fmt.Fprintf(&b, "  %s", o.Duration.Round(10*time.Millisecond))
	return b.String()
}

// composeFlag picks the compose flavour on the hosts of an image app.
func composeFlag() cli.Flag {
	return &cli.StringFlag{Name: "compose", EnvVars: []string{"SKIFF_COMPOSE"}, Value: "auto",
		Usage: "compose flavour `MODE` on the hosts (image apps): auto, plugin (docker compose) or standalone (docker-compose)"}
}

func deployCommand() *cli.Command {
	return &cli.Command{
		Name:      "deploy",
		Usage:     "ship a new release of APP to its hosts and make it live",
		ArgsUsage: "APP",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "source", EnvVars: []string{"SKIFF_SOURCE"}, Usage: "local `DIR` to ship", DefaultText: "the app's source"},
			&cli.StringFlag{Name: "revision", EnvVars: []string{"SKIFF_REVISION"}, Usage: "`REV` recorded in history", DefaultText: "git HEAD of the source"},
			&cli.StringFlag{Name: "tag", EnvVars: []string{"SKIFF_TAG"}, Usage: "image `TAG` to deploy (image apps)"},
			&cli.StringFlag{Name: "image", EnvVars: []string{"SKIFF_IMAGE"}, Usage: "full image `REF` to deploy (image apps)"},
			&cli.BoolFlag{Name: "only-failed", Usage: "deploy only to the hosts whose last run of APP failed"},
			&cli.BoolFlag{Name: "rollback-fleet", Usage: "when the rollout stops, also roll back the hosts that succeeded in this run"},
			composeFlag(),
		},
		Action: func(c *cli.Context) error {
			app, err := appArg(c, "deploy")
			if err != nil {
				return err
			}
			return request(c, outcomeView, func(ctx context.Context, s *session) (*fleet.Report, error) {
				return s.engine.Deploy(ctx, fleet.DeployRequest{
					App: app, Hosts: s.hosts, Source: c.String("source"), Revision: c.String("revision"),
					Tag: c.String("tag"), Image: c.String("image"), Compose: c.String("compose"),
					OnlyFailed: c.Bool("only-failed"), RollbackFleet: c.Bool("rollback-fleet"),
				})
			})
		},
	}
}

func rollbackCommand() *cli.Command {
	return &cli.Command{
		Name:      "rollback",
		Usage:     "make an earlier release of APP live again (the previous one, or --to ID)",
		ArgsUsage: "APP",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "to", Usage: "release `ID` to go back to"},
			&cli.BoolFlag{Name: "force", Usage: "allow going back to a release that history marks as failed"},
			composeFlag(),
		},
		Action: func(c *cli.Context) error {
			app, err := appArg(c, "rollback")
			if err != nil {
				return err
			}
			return request(c, outcomeView, func(ctx context.Context, s *session) (*fleet.Report, error) {
				return s.engine.Rollback(ctx, fleet.RollbackRequest{
					App: app, Hosts: s.hosts, To: c.String("to"), Force: c.Bool("force"), Compose: c.String("compose"),
				})
			})
		},
	}
}
