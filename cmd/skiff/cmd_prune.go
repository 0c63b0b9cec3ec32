package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/skiffdeploy/skiff/deploy"
	"github.com/skiffdeploy/skiff/inventory"
	"github.com/urfave/cli/v2"
)

func pruneCommand() *cli.Command {
	return &cli.Command{
		Name:      "prune",
		Usage:     "remove docker images and old releases beyond retention (all apps of the selected hosts, or APP)",
		ArgsUsage: "[APP]",
		Action: func(c *cli.Context) error {
			a, only, err := newPruneRun(c)
			if err != nil {
				return err
			}
			defer a.s.close()
			return a.inspect(c.Context, "prune", func(ctx context.Context, h *inventory.Host, conn deploy.HostConn, r *hostResult) error {
				scope := deploy.PruneScope{Apps: deploy.HostApps(a.s.inv, h.Name), Only: only}
				rep := deploy.Prune(ctx, conn, h.Name, scope, a.opts)
				r.Pruned, r.summary = rep, pruneSummary(rep)
				return rep.Err
			})
		},
	}
}

// newPruneRun resolves the hosts to prune: APP's (narrowed by --hosts) when it is given, else the selected
// hosts. It returns the app to prune alone, or "".
func newPruneRun(c *cli.Context) (*appRun, string, error) {
	switch c.NArg() {
	case 0:
	case 1:
		a, err := newAppRun(c, "prune")
		if err != nil {
			return nil, "", err
		}
		return a, a.app.Name, nil
	default:
		return nil, "", usagef("prune: give at most one APP (got %d arguments)", c.NArg())
	}
	s, err := newSession(c)
	if err != nil {
		return nil, "", err
	}
	hosts, err := s.selectHosts()
	if err != nil {
		s.close()
		return nil, "", err
	}
	names := make([]string, len(hosts))
	for i, h := range hosts {
		names[i] = h.Name
	}
	s.out.setHosts(names)
	return &appRun{s: s, hosts: hosts, opts: runOptions(s)}, "", nil
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
