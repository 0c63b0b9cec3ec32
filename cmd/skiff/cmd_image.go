package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/skiffdeploy/skiff/compose"
	"github.com/skiffdeploy/skiff/deploy"
	"github.com/skiffdeploy/skiff/inventory"
	"github.com/urfave/cli/v2"
)

// composeFlag picks the compose flavour on the hosts of an image app.
func composeFlag() cli.Flag {
	return &cli.StringFlag{Name: "compose", EnvVars: []string{"SKIFF_COMPOSE"}, Value: "auto",
		Usage: "compose flavour `MODE` on the hosts (image apps): auto, plugin (docker compose) or standalone (docker-compose)"}
}

// deployImage is `skiff deploy APP` for an image app: --tag or --image, pulled and pinned on every host.
func (a *appRun) deployImage(c *cli.Context) error {
	if c.String("source") != "" {
		return usagef("deploy %s: --source is for source apps; an image app takes --tag or --image", a.app.Name)
	}
	img, err := deploy.NewImageOptions(a.s.inv, a.app, c.String("tag"), c.String("image"), c.String("compose"), a.opts.Secret)
	if err != nil {
		return usagef("deploy %s: %v", a.app.Name, err)
	}
	a.image, a.opts.Revision = img, c.String("revision")
	if !a.s.out.json {
		a.s.out.logf("deploying %s image %s to %d host(s)", a.app.Name, img.Ref, len(a.hosts))
	}
	if c.Bool("only-failed") {
		a.narrowToFailed(c.Context)
	}
	outs, errs := a.each(c.Context, "deploy", func(ctx context.Context, h *inventory.Host, conn deploy.HostConn) *deploy.Outcome {
		return deploy.DeployImage(ctx, conn, a.app, h.Name, a.opts, img)
	})
	if c.Bool("rollback-fleet") && stopped(errs) {
		a.rollbackFleet(c.Context, outs, errs)
	}
	return a.finish("deploy", outs, errs)
}

// rollbackImage is `skiff rollback APP [--to ID|DIGEST]` for an image app.
func (a *appRun) rollbackImage(c *cli.Context) error {
	mode, err := compose.ParseMode(c.String("compose"))
	if err != nil {
		return usagef("rollback %s: %v", a.app.Name, err)
	}
	a.image = &deploy.ImageOptions{Compose: mode}
	a.opts.To, a.opts.Force = c.String("to"), c.Bool("force")
	outs, errs := a.each(c.Context, "rollback", func(ctx context.Context, h *inventory.Host, conn deploy.HostConn) *deploy.Outcome {
		return deploy.RollbackImage(ctx, conn, a.app, h.Name, a.opts, a.image)
	})
	return a.finish("rollback", outs, errs)
}

// rollbackOne rolls one host back with the flow of the app's kind.
func (a *appRun) rollbackOne(ctx context.Context, conn deploy.HostConn, host string, opts *deploy.Options) *deploy.Outcome {
	if a.app.Kind == inventory.KindImage {
		img := a.image
		if img == nil {
			img = &deploy.ImageOptions{Compose: compose.Auto}
		}
		return deploy.RollbackImage(ctx, conn, a.app, host, opts, img)
	}
	return deploy.RollbackSource(ctx, conn, a.app, host, opts)
}

// imageSummary is the text-mode line of an image deploy or rollback.
func imageSummary(o *deploy.Outcome) string {
	ic := o.Image
	var b strings.Builder
	if idOf(ic.Before) == idOf(ic.After) {
		fmt.Fprintf(&b, "%s (unchanged)", releaseText(ic.After))
	} else {
		fmt.Fprintf(&b, "%s -> %s", releaseText(ic.Before), releaseText(ic.After))
	}
	if len(ic.Containers) > 0 {
		fmt.Fprintf(&b, "  %s", containersText(ic.Containers))
	}
	fmt.Fprintf(&b, "  %s", o.Duration.Round(10*time.Millisecond))
	return b.String()
}

func idOf(r *deploy.ImageRelease) string {
	if r == nil {
		return ""
	}
	return r.ID
}

func releaseText(r *deploy.ImageRelease) string {
	if r == nil {
		return "-"
	}
	return r.String()
}

func containersText(ctrs []compose.Container) string {
	parts := make([]string, len(ctrs))
	for i, c := range ctrs {
		s := c.Status
		if c.Health != "" {
			s += "," + c.Health
		}
		parts[i] = fmt.Sprintf("%s=%s", c.Name, s)
	}
	return strings.Join(parts, " ")
}

// imageStatus is `skiff status APP` for an image app: live release, pinned image, containers and checks.
func (a *appRun) imageStatus(c *cli.Context) error {
	return a.inspect(c.Context, "status", func(ctx context.Context, h *inventory.Host, conn deploy.HostConn, r *hostResult) error {
		st := &appStatus{}
		r.Status = st
		img, err := deploy.ImageStatus(ctx, conn, a.app)
		if err != nil {
			return err
		}
		st.Image = img
		st.Current = idOf(img.Live)
		if held, err := deploy.LockStatus(ctx, conn, deploy.Layout{Path: a.app.Path}, a.app.Timeout.Duration); err == nil && held != nil {
			st.Lock = held.Error()
		}
		if err := deploy.CheckApp(ctx, conn, a.app.Check); err != nil {
			st.CheckErr = err.Error()
		} else {
			st.CheckOK = true
		}
		for _, ctr := range img.Containers {
			a.s.out.line(h.Name, "stdout", fmt.Sprintf("%s %s  %s  %s  restarts %d  started %s", ctr.Short(), ctr.Name, ctr.Image,
				strings.TrimSuffix(ctr.Status+" "+ctr.Health, " "), ctr.RestartCount, ctr.StartedAt.UTC().Format(time.RFC3339)))
		}
		r.summary = fmt.Sprintf("live %s  %s  check %s", releaseText(img.Live), orDash(containersText(img.Containers)), map[bool]string{true: "ok", false: "FAILED"}[st.CheckOK])
		switch {
		case !st.CheckOK:
			return fmt.Errorf("live %s: %s", releaseText(img.Live), st.CheckErr)
		case len(img.Containers) == 0:
			return fmt.Errorf("live %s: service %s has no container", releaseText(img.Live), a.app.Service)
		}
		for _, ctr := range img.Containers {
			if ctr.Status != "running" || ctr.Health == "unhealthy" {
				return fmt.Errorf("container %s (%s) is %s", ctr.Short(), ctr.Name, strings.TrimSpace(ctr.Status+" "+ctr.Health))
			}
		}
		return nil
	})
}

// imageReleases is `skiff releases APP` for an image app: every image in history, live, failed, still there.
func (a *appRun) imageReleases(c *cli.Context) error {
	return a.inspect(c.Context, "releases", func(ctx context.Context, h *inventory.Host, conn deploy.HostConn, r *hostResult) error {
		rels, hist, err := deploy.ImageReleases(ctx, conn, a.app)
		if err != nil {
			return err
		}
		var live *deploy.ImageRelease
		for _, rel := range rels {
			info := releaseInfo{ID: rel.ID, Current: rel.Live, Failed: rel.Failed, Tag: rel.Tag, Image: rel.Image, Digest: rel.Digest, Present: &rel.Present}
			r.Releases = append(r.Releases, info)
			mark := "  "
			if rel.Live {
				mark = "* "
				live = &rel.ImageRelease
			}
			var notes []string
			if rel.Failed {
				notes = append(notes, "failed")
			}
			if !rel.Present {
				notes = append(notes, "image no longer on the host")
			}
			note := ""
			if len(notes) > 0 {
				note = "  (" + strings.Join(notes, ", ") + ")"
			}
			a.s.out.line(h.Name, "stdout", fmt.Sprintf("%s%s  %s  %s@%s%s", mark, rel.ID, orDash(rel.Tag), rel.Image, rel.Digest, note))
		}
		r.History = hist
		for _, e := range lastN(hist, 10) {
			a.s.out.line(h.Name, "stdout", fmt.Sprintf("  %s %-8s %-11s %s <- %s %s %s %s", e.Time.UTC().Format(time.RFC3339), e.Op, e.Result, orDash(e.ID), orDash(e.Previous), orDash(e.Tag), e.Operator, oneLine(e.Error)))
		}
		r.summary = fmt.Sprintf("live %s, %d image release(s), %d history entries", releaseText(live), len(rels), len(hist))
		return nil
	})
}
