package fleet

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/skiffdeploy/skiff/deploy"
	"github.com/skiffdeploy/skiff/inventory"
	"github.com/skiffdeploy/skiff/remote"
)

// Selection names the hosts a request acts on: host and group names ("all" is every host). Empty means every
// host of the request's app, or every host when the request has no app.
type Selection []string

// appTarget is a request's app and the hosts it runs on.
type appTarget struct {
	app   *inventory.App
	hosts []*inventory.Host
}

// selectApp resolves an app name and its hosts narrowed by sel.
func (e *Engine) selectApp(command, name string, sel Selection) (*appTarget, error) {
	inv := e.cfg.Inventory
	app, ok := inv.Apps[name]
	if !ok {
		return nil, requestf("%s: no app %q in %s (have: %s)", command, name, inv.File, strings.Join(slices.Sorted(maps.Keys(inv.Apps)), ", "))
	}
	hosts, err := inv.AppHosts(app, sel)
	if err != nil {
		return nil, requestf("--hosts: %v", err)
	}
	if len(hosts) == 0 {
		return nil, requestf("%s: no host of app %s is selected", command, name)
	}
	e.start(hosts)
	return &appTarget{app: app, hosts: hosts}, nil
}

// selectHosts resolves sel against the inventory; a name that is neither a host nor a group is a request error.
func (e *Engine) selectHosts(sel Selection) ([]*inventory.Host, error) {
	hosts, err := e.cfg.Inventory.Select(sel)
	if err != nil {
		return nil, requestf("--hosts: %v", err)
	}
	if len(hosts) == 0 {
		return nil, requestf("no hosts selected")
	}
	e.start(hosts)
	return hosts, nil
}

// requireSecrets refuses to start when a secret the app needs is missing from the environment. Without this
// check a deploy would switch to the new release, fail to restart it with supervisord's 401, and fail again
// switching back.
func (e *Engine) requireSecrets(app *inventory.App) error {
	if env := app.Supervisor.PasswordEnv; env != "" && e.cfg.Secret(env) == "" {
		return requestf("app %s: supervisor.password_env names %s, which is not set in the environment", app.Name, env)
	}
	if app.Env != nil {
		if _, err := deploy.RenderEnv(app.Env, e.cfg.Secret); err != nil {
			return requestf("app %s: %v", app.Name, err)
		}
	}
	return nil
}

// hostJob does a request's work on one connected host and fills in its result.
type hostJob func(ctx context.Context, h *inventory.Host, conn *remote.Conn, r *HostResult) error

// onHosts runs job on every host, parallel at once, reports each host's result as it finishes and closes its
// connection. It does not stop at the first failure: one broken host must not hide the state of the others.
func (e *Engine) onHosts(ctx context.Context, command string, hosts []*inventory.Host, parallel int, job hostJob, timeout time.Duration) *Report {
	rep := &Report{Command: command, DryRun: e.cfg.DryRun, Hosts: make([]*HostResult, len(hosts))}
	errs := deploy.ForEach(ctx, len(hosts), parallel, func(ctx context.Context, i int) error {
		h, r := hosts[i], &HostResult{Host: hosts[i].Name}
		rep.Hosts[i] = r
		start := time.Now()
		if timeout > 0 { // reading a host's state never takes longer than changing it
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		conn, err := e.hold(ctx, h)
		defer e.release(h)
		if err == nil {
			err = job(ctx, h, conn, r)
		}
		e.done(r, err, time.Since(start))
		return err
	})
	for i, r := range rep.Hosts {
		if r == nil { // never started: the context ended first
			rep.Hosts[i] = &HostResult{Host: hosts[i].Name}
			e.done(rep.Hosts[i], errs[i], 0)
		}
	}
	return rep
}

// done completes a host's result with its error and duration and sends it to the sink.
func (e *Engine) done(r *HostResult, err error, d time.Duration) {
	r.OK, r.Err, r.DurationMS = err == nil, err, d.Milliseconds()
	if err != nil {
		r.Error = err.Error()
	}
	e.emit(Event{Kind: EventDone, Host: r.Host, Result: r})
}

// Check reaches every selected host: SSH, host key, user, OS, docker/compose and supervisord.
func (e *Engine) Check(ctx context.Context, sel Selection) (*Report, error) {
	hosts, err := e.selectHosts(sel)
	if err != nil {
		return nil, err
	}
	return e.onHosts(ctx, "check", hosts, e.parallelOr(20), func(ctx context.Context, h *inventory.Host, conn *remote.Conn, r *HostResult) error {
		ctx, cancel := context.WithTimeout(ctx, checkTimeout)
		defer cancel()
		r.HostKey = conn.HostKeyFingerprint()
		facts, err := deploy.Probe(ctx, conn, deploy.NeedsOf(e.cfg.Inventory, h.Name))
		r.Check = facts
		return err
	}, 0), nil
}

// Exec runs argv on every selected host; one word with shell syntax in it is a script, as with
// `ssh HOST 'a && b'`. Each line of output is an event as it arrives.
func (e *Engine) Exec(ctx context.Context, sel Selection, argv []string) (*Report, error) {
	if len(argv) == 0 {
		return nil, requestf("exec: no command given (write: skiff exec -- CMD …)")
	}
	hosts, err := e.selectHosts(sel)
	if err != nil {
		return nil, err
	}
	base := remote.Command{Argv: argv}
	if len(argv) == 1 {
		base = remote.Command{Script: argv[0]}
	}
	return e.onHosts(ctx, "exec", hosts, e.parallelOr(20), func(ctx context.Context, h *inventory.Host, conn *remote.Conn, r *HostResult) error {
		var out, errOut keptOutput
		cmd := base
		cmd.Stdout = func(line string) {
			out.add(line)
			e.emit(Event{Kind: EventLine, Host: h.Name, Stream: "stdout", Text: line})
		}
		cmd.Stderr = func(line string) {
			errOut.add(line)
			e.emit(Event{Kind: EventLine, Host: h.Name, Stream: "stderr", Text: line})
		}
		_, err := conn.Run(ctx, cmd)
		status := 0
		var ee *remote.ExitError
		if errors.As(err, &ee) {
			status = ee.Status
		}
		if err == nil || ee != nil {
			r.ExitStatus = &status
		}
		r.Stdout, r.Stderr = out.String(), errOut.String()
		return err
	}, 0), nil
}

// start reports the hosts a request selected.
func (e *Engine) start(hosts []*inventory.Host) {
	names := make([]string, len(hosts))
	for i, h := range hosts {
		names[i] = h.Name
	}
	e.emit(Event{Kind: EventStart, Hosts: names})
}

// checkTimeout bounds `skiff check` on one host: a handful of short probes.
const checkTimeout = time.Minute

// execKeep bounds what exec keeps of each output stream of a host for the report; every line is still sent
// as an event.
const execKeep = 1 << 20

// keptOutput is one output stream of exec as kept for the report: up to execKeep bytes, then a count of the
// rest.
type keptOutput struct {
	b       strings.Builder
	dropped int64
}

func (k *keptOutput) add(line string) {
	if k.dropped > 0 || k.b.Len()+len(line)+1 > execKeep {
		k.dropped += int64(len(line) + 1)
		return
	}
	k.b.WriteString(line)
	k.b.WriteByte('\n')
}

func (k *keptOutput) String() string {
	if k.dropped == 0 {
		return k.b.String()
	}
	return k.b.String() + fmt.Sprintf("[skiff: %d more bytes not kept]\n", k.dropped)
}
