package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/skiffdeploy/skiff/deploy"
	"github.com/skiffdeploy/skiff/fleet"
	"github.com/skiffdeploy/skiff/inventory"
	"github.com/urfave/cli/v2"
)

// appCommand is the Action of a read-only command on one APP.
func appCommand(command string, v func(s *session, app string) view, fn func(ctx context.Context, s *session, req fleet.AppRequest) (*fleet.Report, error)) cli.ActionFunc {
	return func(c *cli.Context) error {
		app, err := appArg(c, command)
		if err != nil {
			return err
		}
		return request(c, func(s *session) view { return v(s, app) }, func(ctx context.Context, s *session) (*fleet.Report, error) {
			return fn(ctx, s, fleet.AppRequest{App: app, Hosts: s.hosts})
		})
	}
}

func releasesCommand() *cli.Command {
	return &cli.Command{
		Name:      "releases",
		Usage:     "list APP's releases and history on each host",
		ArgsUsage: "APP",
		Action: appCommand("releases", releasesView,
			func(ctx context.Context, s *session, req fleet.AppRequest) (*fleet.Report, error) {
				return s.engine.Releases(ctx, req)
			}),
	}
}

// releasesView shows a host's releases (the live one starred) and its last ten history entries.
func releasesView(s *session, app string) view {
	image := s.inv.Apps[app] != nil && s.inv.Apps[app].Kind == inventory.KindImage
	return view{
		details: func(r *hostResult) []string { return releaseLines(r, image) },
		summary: func(r *hostResult) string { return releasesSummary(r, image) },
	}
}

func releaseLines(r *hostResult, image bool) []string {
	var lines []string
	for _, rel := range r.Releases {
		mark := "  "
		if rel.Current {
			mark = "* "
		}
		var notes []string
		switch {
		case rel.Incomplete:
			notes = append(notes, "incomplete: left by an interrupted deploy")
		case rel.Failed:
			notes = append(notes, "failed")
		}
		if rel.Present != nil && !*rel.Present {
			notes = append(notes, "image no longer on the host")
		}
		note := ""
		if len(notes) > 0 {
			note = "  (" + strings.Join(notes, ", ") + ")"
		}
		if image {
			lines = append(lines, fmt.Sprintf("%s%s  %s  %s@%s%s", mark, rel.ID, orDash(rel.Tag), rel.Image, rel.Digest, note))
		} else {
			lines = append(lines, mark+rel.ID+note+buildsText(rel.Builds))
		}
	}
	for _, e := range lastN(r.History, 10) {
		tag := ""
		if image {
			tag = " " + orDash(e.Tag)
		}
		lines = append(lines, fmt.Sprintf("  %s %-8s %-11s %s <- %s%s %s %s", rfc3339(e.Time), e.Op, e.Result, orDash(e.ID), orDash(e.Previous), tag, e.Operator, oneLine(e.Error)))
	}
	return lines
}

func releasesSummary(r *hostResult, image bool) string {
	live := ""
	for _, rel := range r.Releases {
		if !rel.Current {
			continue
		}
		live = rel.ID
		if image {
			live = deploy.ImageRelease{Tag: rel.Tag, Digest: rel.Digest}.String()
		}
	}
	if image {
		return fmt.Sprintf("live %s, %d image release(s), %d history entries", orDash(live), len(r.Releases), len(r.History))
	}
	return fmt.Sprintf("current %s, %d release(s), %d history entries", orDash(live), len(r.Releases), len(r.History))
}

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show APP's current release, process states and port checks per host",
		ArgsUsage: "APP",
		Action: appCommand("status", func(*session, string) view { return view{details: statusLines, summary: statusSummary} },
			func(ctx context.Context, s *session, req fleet.AppRequest) (*fleet.Report, error) {
				return s.engine.Status(ctx, req)
			}),
	}
}

func statusLines(r *hostResult) []string {
	if r.Status == nil || r.Status.Image == nil {
		return nil
	}
	return imageStatusLines(r.Status.Image)
}

func statusSummary(r *hostResult) string {
	st := r.Status
	if st == nil {
		return ""
	}
	if st.Image != nil {
		return imageStatusSummary(st)
	}
	var parts []string
	for _, p := range st.Processes {
		parts = append(parts, fmt.Sprintf("%s=%s(pid %d)", p.Name, p.State, p.PID))
	}
	return fmt.Sprintf("current %s  %s  check %s", orDash(st.Current), strings.Join(parts, " "), okText(st.CheckOK))
}

func okText(ok bool) string {
	if ok {
		return "ok"
	}
	return "FAILED"
}

func lockCommand() *cli.Command {
	action := func(remove bool) cli.ActionFunc {
		return func(c *cli.Context) error {
			v := func(*session, string) view { return view{summary: lockSummary} }
			return appCommand("lock", v, func(ctx context.Context, s *session, req fleet.AppRequest) (*fleet.Report, error) {
				return s.engine.Lock(ctx, req, remove, c.Bool("force"))
			})(c)
		}
	}
	return &cli.Command{
		Name:  "lock",
		Usage: "show or remove APP's deploy lock on its hosts",
		Subcommands: []*cli.Command{
			{Name: "status", ArgsUsage: "APP", Usage: "who holds APP's lock on each host", Action: action(false)},
			{Name: "release", ArgsUsage: "APP", Usage: "remove APP's lock on each host (after a crashed run)", Action: action(true),
				Flags: []cli.Flag{&cli.BoolFlag{Name: "force", Usage: "also remove a lock younger than the app's timeout, or one without an owner"}}},
		},
	}
}

func lockSummary(r *hostResult) string {
	switch {
	case r.Released != "":
		return "released (was: " + r.Released + ")"
	case r.Lock != "":
		return "held: " + r.Lock
	}
	return "free"
}

// buildsText lists a release's builds for the text output of `skiff releases`.
func buildsText(builds []deploy.ReleaseBuild) string {
	if len(builds) == 0 {
		return ""
	}
	refs := make([]string, len(builds))
	for i, b := range builds {
		refs[i] = b.Ref()
	}
	return "  builds: " + strings.Join(refs, " ")
}
