package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/skiffdeploy/skiff/deploy"
	"github.com/skiffdeploy/skiff/inventory"
	"github.com/skiffdeploy/skiff/supervisor"
	"github.com/urfave/cli/v2"
)

// inspect runs a read-only job on every host of the app, up to --parallel at once, and prints the results.
func (a *appRun) inspect(ctx context.Context, command string, job func(ctx context.Context, h *inventory.Host, conn deploy.HostConn, r *hostResult) error) error {
	results := make([]hostResult, len(a.hosts))
	errs := deploy.ForEach(ctx, len(a.hosts), a.s.parallelOr(20), func(ctx context.Context, i int) error {
		h, r := a.hosts[i], &results[i]
		start := time.Now()
		conn, err := a.s.pool.Get(ctx, deploy.Target(a.s.inv, h))
		if err == nil {
			err = job(ctx, h, conn, r)
		}
		r.Host, r.OK, r.DurationMS = h.Name, err == nil, millis(time.Since(start))
		if err != nil {
			r.Error = err.Error()
		}
		return err
	})
	return a.s.out.finish(command, results, errs)
}

// releaseInfo is one release on a host as `skiff releases` shows it.
type releaseInfo struct {
	ID      string `json:"id"`
	Current bool   `json:"current"`
	Failed  bool   `json:"failed"`
	// Incomplete marks a release directory without a manifest: the remains of an interrupted deploy.
	Incomplete bool `json:"incomplete,omitempty"`
	// Builds are the builds (source apps with [[apps.NAME.builds]]) the release links, with their keys.
	Builds []deploy.ReleaseBuild `json:"builds,omitempty"`
	// Image apps: the image of the release and whether it is still on the host.
	Tag     string `json:"tag,omitempty"`
	Image   string `json:"image,omitempty"`
	Digest  string `json:"digest,omitempty"`
	Present *bool  `json:"present,omitempty"`
}

func releasesCommand() *cli.Command {
	return &cli.Command{
		Name:      "releases",
		Usage:     "list APP's releases and history on each host",
		ArgsUsage: "APP",
		Action: withApp("releases", false, func(c *cli.Context, a *appRun) error {
			if a.app.Kind == inventory.KindImage {
				return a.imageReleases(c)
			}
			l := deploy.Layout{Path: a.app.Path}
			return a.inspect(c.Context, "releases", func(ctx context.Context, h *inventory.Host, conn deploy.HostConn, r *hostResult) error {
				cur, err := deploy.ReadCurrent(ctx, conn, l)
				if err != nil {
					return err
				}
				ids, err := deploy.ListReleases(ctx, conn, l)
				if err != nil {
					return err
				}
				hist, err := deploy.ReadHistory(ctx, conn, l)
				if err != nil {
					return err
				}
				complete, err := deploy.CompleteReleases(ctx, conn, l)
				if err != nil {
					return err
				}
				failed := deploy.FailedIDs(hist)
				for _, id := range ids {
					info := releaseInfo{ID: id, Current: id == cur, Failed: failed[id], Incomplete: !complete[id]}
					if complete[id] {
						if info.Builds, err = deploy.ReadReleaseBuilds(ctx, conn, l, id); err != nil {
							return err
						}
					}
					r.Releases = append(r.Releases, info)
					mark := "  "
					if id == cur {
						mark = "* "
					}
					state := ""
					switch {
					case !complete[id]:
						state = "  (incomplete: left by an interrupted deploy)"
					case failed[id]:
						state = "  (failed)"
					}
					a.s.out.line(h.Name, "stdout", mark+id+state+buildsText(info.Builds))
				}
				r.History = hist
				for _, e := range lastN(hist, 10) {
					a.s.out.line(h.Name, "stdout", fmt.Sprintf("  %s %-8s %-11s %s <- %s %s %s", e.Time.UTC().Format(time.RFC3339), e.Op, e.Result, orDash(e.ID), orDash(e.Previous), e.Operator, oneLine(e.Error)))
				}
				r.summary = fmt.Sprintf("current %s, %d release(s), %d history entries", orDash(cur), len(ids), len(hist))
				return nil
			})
		}),
	}
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

func lastN[T any](s []T, n int) []T {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// appStatus is what `skiff status` reports per host.
type appStatus struct {
	Current   string          `json:"current"`
	Processes []processStatus `json:"processes,omitempty"`
	CheckOK   bool            `json:"check_ok"`
	CheckErr  string          `json:"check_error,omitempty"`
	Lock      string          `json:"lock,omitempty"`
	// Image apps: live release, pinned image and containers.
	Image *deploy.ImageState `json:"image,omitempty"`
}

type processStatus struct {
	Name  string `json:"name"`
	State string `json:"state"`
	PID   int    `json:"pid"`
}

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show APP's current release, process states and port checks per host",
		ArgsUsage: "APP",
		Action: withApp("status", true, func(c *cli.Context, a *appRun) error {
			if a.app.Kind == inventory.KindImage {
				return a.imageStatus(c)
			}
			l := deploy.Layout{Path: a.app.Path}
			return a.inspect(c.Context, "status", func(ctx context.Context, h *inventory.Host, conn deploy.HostConn, r *hostResult) error {
				st := &appStatus{}
				r.Status = st
				cur, err := deploy.ReadCurrent(ctx, conn, l)
				if err != nil {
					return err
				}
				st.Current = cur
				if held, err := deploy.LockStatus(ctx, conn, l, a.app.Timeout.Duration); err == nil && held != nil {
					st.Lock = held.Error()
				}
				if sup := a.app.Supervisor; sup.URL != "" {
					procs, err := programStates(ctx, conn, sup, a.opts.Secret)
					if err != nil {
						return err
					}
					st.Processes = procs
				}
				if err := deploy.CheckApp(ctx, conn, a.app.Check); err != nil {
					st.CheckErr = err.Error()
				} else {
					st.CheckOK = true
				}
				var parts []string
				for _, p := range st.Processes {
					parts = append(parts, fmt.Sprintf("%s=%s(pid %d)", p.Name, p.State, p.PID))
				}
				r.summary = fmt.Sprintf("current %s  %s  check %s", orDash(cur), strings.Join(parts, " "), map[bool]string{true: "ok", false: "FAILED"}[st.CheckOK])
				if !st.CheckOK {
					return fmt.Errorf("current %s: %s", orDash(cur), st.CheckErr)
				}
				return nil
			})
		}),
	}
}

// programStates reads the state of the app's programs from supervisord through the connection.
func programStates(ctx context.Context, conn deploy.HostConn, sup inventory.Supervisor, secret func(string) string) ([]processStatus, error) {
	opts := supervisor.Options{Username: sup.Username}
	if sup.PasswordEnv != "" {
		opts.Password = secret(sup.PasswordEnv)
	}
	client, err := supervisor.New(conn, sup.URL, opts)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	names, err := client.Resolve(ctx, sup.Programs)
	if err != nil {
		return nil, err
	}
	var out []processStatus
	for _, n := range names {
		p, err := client.Process(ctx, n)
		if err != nil {
			return nil, err
		}
		out = append(out, processStatus{Name: n, State: string(p.State), PID: p.PID})
	}
	return out, nil
}

func lockCommand() *cli.Command {
	action := func(release bool) cli.ActionFunc {
		return withApp("lock", false, func(c *cli.Context, a *appRun) error {
			l := deploy.Layout{Path: a.app.Path}
			return a.inspect(c.Context, "lock", func(ctx context.Context, h *inventory.Host, conn deploy.HostConn, r *hostResult) error {
				held, err := deploy.LockStatus(ctx, conn, l, a.app.Timeout.Duration)
				if err != nil {
					return err
				}
				switch {
				case held == nil:
					r.summary = "free"
				case release && !a.s.dryRun:
					if err := deploy.ForceReleaseLock(ctx, conn, l); err != nil {
						return err
					}
					r.summary = "released (was: " + held.Error() + ")"
				default:
					r.Lock = held.Error()
					r.summary = "held: " + held.Error()
				}
				return nil
			})
		})
	}
	return &cli.Command{
		Name:  "lock",
		Usage: "show or remove APP's deploy lock on its hosts",
		Subcommands: []*cli.Command{
			{Name: "status", ArgsUsage: "APP", Usage: "who holds APP's lock on each host", Action: action(false)},
			{Name: "release", ArgsUsage: "APP", Usage: "remove APP's lock on each host (after a crashed run)", Action: action(true)},
		},
	}
}
