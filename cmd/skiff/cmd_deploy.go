package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/skiffdeploy/skiff/deploy"
	"github.com/skiffdeploy/skiff/inventory"
	"github.com/urfave/cli/v2"
)

// appRun is one command's work on one app across its hosts.
type appRun struct {
	s     *session
	app   *inventory.App
	hosts []*inventory.Host
	opts  *deploy.Options
	image *deploy.ImageOptions // image apps: what deploy and rollback pass to the image flow
}

// newAppRun resolves the APP argument and its hosts (narrowed by --hosts).
func newAppRun(c *cli.Context, command string) (*appRun, error) {
	if c.NArg() != 1 {
		return nil, usagef("%s: give exactly one APP (got %d arguments)", command, c.NArg())
	}
	s, err := newSession(c)
	if err != nil {
		return nil, err
	}
	name := c.Args().First()
	app, ok := s.inv.Apps[name]
	if !ok {
		s.close()
		return nil, usagef("%s: no app %q in %s (have: %s)", command, name, s.inv.File, strings.Join(sorted(s.inv.Apps), ", "))
	}
	hosts, err := s.inv.AppHosts(app, s.hosts)
	if err != nil {
		s.close()
		return nil, usagef("--hosts: %v", err)
	}
	if len(hosts) == 0 {
		s.close()
		return nil, usagef("%s: no host of app %s is selected", command, name)
	}
	names := make([]string, len(hosts))
	for i, h := range hosts {
		names[i] = h.Name
	}
	s.out.setHosts(names)
	s.app = name
	return &appRun{s: s, app: app, hosts: hosts, opts: runOptions(s)}, nil
}

// withApp is the Action of a command on one APP: it resolves the app and its hosts, refuses to start when a
// secret the app needs is missing (needSecrets), and closes the run's connections afterwards.
func withApp(command string, needSecrets bool, fn func(c *cli.Context, a *appRun) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		a, err := newAppRun(c, command)
		if err != nil {
			return err
		}
		defer a.s.close()
		if needSecrets {
			if err := a.requireSecrets(); err != nil {
				return err
			}
		}
		return fn(c, a)
	}
}

// runOptions are the deploy options of one run: who runs it (see operatorAndOrigin), its id, and where its
// output goes.
func runOptions(s *session) *deploy.Options {
	machine, _ := os.Hostname()
	runID := make([]byte, 6)
	rand.Read(runID)
	return &deploy.Options{
		Operator: s.operator, Machine: machine, PID: os.Getpid(), Origin: s.origin, Run: hex.EncodeToString(runID),
		DryRun:   s.dryRun,
		Log:      func(host, line string) { s.out.line(host, "stdout", line) },
		Progress: s.progressEvent,
		Secret:   os.Getenv,
	}
}

// operatorAndOrigin says who runs skiff and from where; CI systems are recognised by their variables.
func operatorAndOrigin() (operator, origin string) {
	operator = os.Getenv("SKIFF_OPERATOR")
	if operator == "" {
		operator = os.Getenv("USER")
	}
	origin = "cli"
	for _, v := range []string{"CI_JOB_URL", "BUILD_URL"} {
		if u := os.Getenv(v); u != "" {
			origin = u
		}
	}
	if gh := os.Getenv("GITHUB_RUN_ID"); gh != "" {
		origin = os.Getenv("GITHUB_SERVER_URL") + "/" + os.Getenv("GITHUB_REPOSITORY") + "/actions/runs/" + gh
	}
	return operator, origin
}

// each runs job on every host of the run in the app's rollout batches and prints the outcomes.
func (a *appRun) each(ctx context.Context, command string, job func(ctx context.Context, h *inventory.Host, conn deploy.HostConn) *deploy.Outcome) ([]*deploy.Outcome, []error) {
	outs := make([]*deploy.Outcome, len(a.hosts))
	errs := deploy.Rollout(ctx, len(a.hosts), a.app.Rollout, a.s.parallel, func(ctx context.Context, i int) error {
		h := a.hosts[i]
		conn, err := a.s.pool.Get(ctx, deploy.Target(a.s.inv, h))
		if err != nil {
			outs[i] = &deploy.Outcome{Host: h.Name, Err: err}
			return err
		}
		outs[i] = job(ctx, h, conn)
		return outs[i].Err
	})
	for i, o := range outs {
		if o == nil {
			outs[i] = &deploy.Outcome{Host: a.hosts[i].Name, Err: errs[i]}
		}
	}
	return outs, errs
}

// finish prints the outcomes and returns the error that decides the exit code.
func (a *appRun) finish(command string, outs []*deploy.Outcome, errs []error) error {
	results := make([]hostResult, len(outs))
	for i, o := range outs {
		summary := outcomeSummary(o)
		if a.s.dryRun {
			summary = "would go " + summary
		}
		results[i] = hostResult{Host: o.Host, OK: o.Err == nil, DurationMS: o.Duration.Milliseconds(), Outcome: o, summary: summary}
		if o.Err != nil {
			results[i].Error = o.Err.Error()
		}
	}
	return a.s.out.finish(command, results, errs)
}

func outcomeSummary(o *deploy.Outcome) string {
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

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
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
		Action: withApp("deploy", true, func(c *cli.Context, a *appRun) error {
			if a.app.Kind == inventory.KindImage {
				return a.deployImage(c)
			}
			if err := a.nameSourceRelease(c); err != nil {
				return err
			}
			// The local tree is scanned while the hosts are connected to, locked and their release cloned; each
			// host waits for the scan before it compares and sends. The hash cache is saved while they deploy,
			// and again after if Ship hashed files (one host).
			scanned, saved := make(chan struct{}), make(chan struct{})
			var m *deploy.Manifest
			var scanErr error
			var cache *deploy.HashCache
			hostCount := make(chan int, 1) // how many hosts the log line names, known once --only-failed has narrowed them
			oneHost := len(a.hosts) == 1
			go func() {
				defer close(saved)
				cache = deploy.OpenHashCache(hashCacheDir(), a.opts.SourceDir)
				if m, scanErr = a.scanSource(c.Context, cache, oneHost); scanErr == nil && !a.s.out.json {
					a.s.out.logf("deploying %s release %s (%d entries) to %d host(s)", a.app.Name, a.opts.ReleaseID, len(m.Entries), <-hostCount)
				}
				close(scanned)
				_ = cache.Save() // a cache that cannot be written only costs the next scan its time
			}()
			a.opts.Scan = func(ctx context.Context) (*deploy.Manifest, error) {
				select {
				case <-scanned:
					return m, scanErr
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			if c.Bool("only-failed") {
				a.narrowToFailed(c.Context)
			}
			hostCount <- len(a.hosts)
			outs, errs := a.each(c.Context, "deploy", func(ctx context.Context, h *inventory.Host, conn deploy.HostConn) *deploy.Outcome {
				return deploy.DeploySource(ctx, conn, a.app, h.Name, a.opts)
			})
			if <-saved; scanErr != nil {
				return scanErr
			}
			_ = cache.Save()
			if c.Bool("rollback-fleet") && stopped(errs) {
				a.rollbackFleet(c.Context, outs, errs)
			}
			return a.finish("deploy", outs, errs)
		}),
	}
}

// requireSecrets refuses to start when a secret the app needs is missing from the environment. Without this
// check a deploy would switch to the new release, fail to restart it with supervisord's 401, and fail again
// switching back.
func (a *appRun) requireSecrets() error {
	if env := a.app.Supervisor.PasswordEnv; env != "" && a.opts.Secret(env) == "" {
		return usagef("app %s: supervisor.password_env names %s, which is not set in the environment", a.app.Name, env)
	}
	if a.app.Env != nil {
		if _, err := deploy.RenderEnv(a.app.Env, a.opts.Secret); err != nil {
			return usagef("app %s: %v", a.app.Name, err)
		}
	}
	return nil
}

// nameSourceRelease finds the source tree and names the release after the moment the deploy started (and the
// tree's git commit), before the scan, however long that takes.
func (a *appRun) nameSourceRelease(c *cli.Context) error {
	dir := c.String("source")
	if dir == "" {
		dir = a.app.Source
	}
	if dir == "" {
		return usagef("deploy %s: no source: set source in %s or pass --source", a.app.Name, a.s.inv.File)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return usagef("deploy %s: source %s is not a directory", a.app.Name, dir)
	}
	started := time.Now()
	rev, sha := c.String("revision"), gitShortSHA(dir)
	if rev == "" {
		rev = sha
	}
	a.opts.SourceDir, a.opts.Revision = dir, rev
	a.opts.ReleaseID = deploy.NewReleaseID(started, sha)
	return nil
}

// scanSource scans the local tree once for all hosts. A deploy to one host leaves the hashing of files the hash
// cache does not know to the transfer, which then overlaps with it; with several, each file is hashed once, up
// front, instead of once per host.
func (a *appRun) scanSource(ctx context.Context, cache *deploy.HashCache, oneHost bool) (*deploy.Manifest, error) {
	m, err := deploy.ScanApp(ctx, a.opts.SourceDir, a.app, cache, oneHost)
	if err != nil {
		return nil, fmt.Errorf("deploy %s: %w", a.app.Name, err)
	}
	return m, nil
}

// hashCacheDir is where the hashes of shipped trees are remembered between runs (see deploy.HashCache);
// SKIFF_HASH_CACHE=off turns the cache off, any other value names the directory.
func hashCacheDir() string {
	switch v := os.Getenv("SKIFF_HASH_CACHE"); v {
	case "off":
		return ""
	case "":
		dir, err := os.UserCacheDir()
		if err != nil {
			return ""
		}
		return filepath.Join(dir, "skiff", "hashes")
	default:
		return v
	}
}

// gitShortSHA returns the short commit of the checkout holding dir, or "" when it is not one.
func gitShortSHA(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	out, err := exec.Command("git", "-C", abs, "rev-parse", "--short=8", "HEAD").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// narrowToFailed keeps only the hosts that did not succeed in the app's last run: the run of the newest history
// entry across all the app's hosts. A host with no entry of that run (its batch never started, or it could not
// be reached) did not succeed either, and neither did one whose history cannot be read now.
func (a *appRun) narrowToFailed(ctx context.Context) {
	l := deploy.Layout{Path: a.app.Path}
	hists := make([][]deploy.HistoryEntry, len(a.hosts))
	errs := deploy.ForEach(ctx, len(a.hosts), a.s.parallelOr(20), func(ctx context.Context, i int) error {
		conn, err := a.s.pool.Get(ctx, deploy.Target(a.s.inv, a.hosts[i]))
		if err == nil {
			hists[i], err = deploy.ReadHistory(ctx, conn, l)
		}
		return err
	})
	var last deploy.HistoryEntry
	for _, h := range hists {
		for _, e := range h {
			if e.Time.After(last.Time) {
				last = e
			}
		}
	}
	var keep []*inventory.Host
	for i, h := range a.hosts {
		if errs[i] != nil || !runSucceeded(hists[i], last.Run) {
			keep = append(keep, h)
		}
	}
	if !a.s.out.json {
		a.s.out.logf("--only-failed: %d of %d host(s) did not succeed in run %s", len(keep), len(a.hosts), orDash(last.Run))
	}
	a.hosts = keep
}

// runSucceeded reports whether a host's history has entries of run, all of them succeeded, and the run left
// the host on what it deployed. A deploy that failed and rolled back by itself ends with a successful rollback
// entry of the same run, so looking at the last entry alone would call that run good; a deploy undone by
// --rollback-fleet is two successful entries of the run, but the host is back on the old release and was
// reported as failed, so it is deployed again too. A run of `skiff rollback` has no deploy to undo.
func runSucceeded(hist []deploy.HistoryEntry, run string) bool {
	seen, deployed, undone := false, false, false
	for _, e := range hist {
		if e.Run != run {
			continue
		}
		if e.Result != deploy.ResultOK {
			return false
		}
		seen = true
		switch e.Op {
		case deploy.ActionDeploy:
			deployed, undone = true, false
		case deploy.ActionRollback:
			undone = deployed
		}
	}
	return seen && !undone
}

// stopped reports whether the rollout stopped before every batch ran.
func stopped(errs []error) bool {
	for _, err := range errs {
		if errors.Is(err, deploy.ErrNotStarted) {
			return true
		}
	}
	return false
}

// rollbackFleet puts back the previous release on the hosts that took the new one in this run, so a stopped
// rollout does not leave the fleet split between two versions.
func (a *appRun) rollbackFleet(ctx context.Context, outs []*deploy.Outcome, errs []error) {
	for i, o := range outs {
		if errs[i] != nil || o.Before == "" || o.Before == o.After {
			continue
		}
		conn, err := a.s.pool.Get(ctx, deploy.Target(a.s.inv, a.hosts[i]))
		if err == nil {
			opts := *a.opts
			opts.To, opts.Force = o.Before, true
			back := a.rollbackOne(ctx, conn, o.Host, &opts)
			err = back.Err
			if err == nil {
				o.After, o.RolledBack = back.After, true
			}
		}
		o.Err = fmt.Errorf("rolled back with the fleet: %w", errOr(err, errors.New("the rollout stopped")))
		errs[i] = o.Err
	}
}

func errOr(err, def error) error {
	if err != nil {
		return err
	}
	return def
}
