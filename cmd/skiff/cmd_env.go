package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/skiffdeploy/skiff/fleet"
	"github.com/urfave/cli/v2"
)

const redacted = "[redacted]"

func envCommand() *cli.Command {
	return &cli.Command{
		Name:      "env",
		Usage:     "show APP's environment file ([apps.APP.env]) on each host, secrets redacted, and which hosts differ",
		ArgsUsage: "APP",
		Action: appCommand("env", func(*session, string) view {
			return view{summary: func(r *hostResult) string { return envSummary(r.Env) }}
		}, func(ctx context.Context, s *session, req fleet.AppRequest) (*fleet.Report, error) {
			return s.engine.Env(ctx, req)
		}),
	}
}

func envSummary(rep *fleet.EnvReport) string {
	if rep == nil {
		return ""
	}
	if !rep.Present {
		return rep.File + ": not written yet"
	}
	parts := []string{fmt.Sprintf("%s %s", rep.File, rep.Mode)}
	for _, k := range rep.Keys {
		v := k.Value
		if k.Secret {
			v = redacted
		}
		parts = append(parts, k.Key+"="+v)
	}
	switch {
	case rep.Current == nil:
	case *rep.Current:
		parts = append(parts, "(as the inventory says)")
	default:
		parts = append(parts, "(differs from the inventory: deploy to write it)")
	}
	if len(rep.Differs) > 0 {
		parts = append(parts, "DIFFERS from "+strings.Join(rep.Differs, ","))
	}
	return strings.Join(parts, "  ")
}
