package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/skiffdeploy/skiff/deploy"
	"github.com/skiffdeploy/skiff/fleet"
	"github.com/urfave/cli/v2"
)

func pruneCommand() *cli.Command {
	return &cli.Command{
		Name:      "prune",
		Usage:     "remove docker images and old releases beyond retention (all apps of the selected hosts, or APP)",
		ArgsUsage: "[APP]",
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 {
				return usagef("prune: give at most one APP (got %d arguments)", c.NArg())
			}
			v := func(*session) view {
				return view{summary: func(r *hostResult) string { return pruneSummary(r.Pruned) }}
			}
			return request(c, v, func(ctx context.Context, s *session) (*fleet.Report, error) {
				return s.engine.Prune(ctx, fleet.PruneRequest{App: c.Args().First(), Hosts: s.hosts})
			})
		},
	}
}

// pruneSummary is the text-mode line of one host's prune.
func pruneSummary(rep *deploy.PruneReport) string {
	verb := "removed"
	if rep.DryRun {
		verb = "would remove"
	}
	var parts []string
	if n := len(rep.Images); n > 0 {
		parts = append(parts, fmt.Sprintf("%d image(s), up to %s", n, deploy.HumanSize(rep.Bytes)))
	}
	if n := len(rep.Releases); n > 0 {
		parts = append(parts, fmt.Sprintf("%d release(s)", n))
	}
	if n := len(rep.Builds); n > 0 {
		parts = append(parts, fmt.Sprintf("%d build(s)", n))
	}
	if n := len(rep.Snapshots); n > 0 {
		parts = append(parts, fmt.Sprintf("%d compose snapshot(s)", n))
	}
	s := verb + " nothing"
	if len(parts) > 0 {
		s = verb + " " + strings.Join(parts, ", ")
	}
	if n := len(rep.Refused); n > 0 {
		s += fmt.Sprintf("; docker refused %d image(s)", n)
	}
	if n := len(rep.Kept); n > 0 {
		s += fmt.Sprintf("; kept %d image(s)", n)
	}
	return s
}
