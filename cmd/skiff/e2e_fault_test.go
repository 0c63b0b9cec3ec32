package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/skiffdeploy/skiff/internal/testenv"
	"github.com/skiffdeploy/skiff/remote"
)

// faultTimeout is the app's timeout in the fault run: long enough for twenty hosts to reach their hook on a
// loaded machine, short enough to keep the test to a minute or two.
const faultTimeout = 40 * time.Second

// TestDeploy_FaultRunOnTwentyHosts deploys to twenty namespaced hosts and, while every host waits in its
// before_switch hook, kills three hosts (every process of them: sshd, its sessions, supervisord), sets the
// link of a fourth down and leaves the hook of a fifth hanging; the other fifteen go on. The run must end
// within the app's timeout plus 15 s with exit 1, the fifteen live and checked, each failed host named with
// its cause, every reachable host unlocked and the hung host's new release removed; once the hosts are back
// (and the locks of the four unreachable ones released, as an operator would), deploy --only-failed
// deploys exactly those five.
func TestDeploy_FaultRunOnTwentyHosts(t *testing.T) {
	if testing.Short() {
		t.Skip("fault run: twenty hosts; skipped with -short")
	}
	t.Parallel()
	env := testenv.Fleet(t, testenv.FleetOptions{Hosts: 20, Programs: testenv.FleetWebProgram})
	inv := env.WriteInventory(t, fmt.Sprintf(`[apps.web]
hosts = ["all"]
path = "/srv/web"
supervisor.url = %q
supervisor.programs = ["web"]
check.ports = [8088]
check.http = "http://127.0.0.1:8088/health"
check.timeout = "10s"
timeout = %q
hooks.before_switch = ["touch /srv/web/in-hook && while [ ! -e /srv/go ]; do sleep 0.1; done"]
rollout.parallel = 20
rollout.max_fail = 20
`, testenv.FleetSupervisorURL, faultTimeout.String()))
	srv := func(h *testenv.Host, name string) string { return filepath.Join(h.Root, "srv", name) }
	letGo := func(hosts ...*testenv.Host) {
		for _, h := range hosts {
			e2eWrite(t, srv(h, "go"), "")
		}
	}
	deploy := func(version string, args ...string) (report, e2eResult, time.Duration) {
		start := time.Now()
		r := e2eSkiff(t, append([]string{"-i", inv, "--json", "deploy", "web", "--source", e2eAppTree(t, version, nil)}, args...)...)
		took := time.Since(start)
		var rep report
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Fatalf("deploy %s: %v\n%s", version, err, r)
		}
		return rep, r, took
	}

	letGo(env.Hosts...)
	if rep, r, _ := deploy("v1"); rep.ExitCode != 0 {
		t.Fatalf("first deploy: %s", r)
	}
	v1 := map[string]string{}
	for _, h := range env.Hosts {
		v1[h.Name] = currentOf(t, srv(h, "web"))
		os.Remove(srv(h, "go"))
		os.Remove(srv(h, "web/in-hook"))
	}

	killed, down, hung, rest := env.Hosts[0:3], env.Hosts[3], env.Hosts[4], env.Hosts[5:]
	type result struct {
		rep  report
		r    e2eResult
		took time.Duration
	}
	done := make(chan result, 1)
	time.Sleep(time.Second) // release ids have a resolution of one second
	go func() {
		rep, r, took := deploy("v2")
		done <- result{rep, r, took}
	}()
	waitFor(t, 30*time.Second, "every host in its hook", func() bool {
		for _, h := range env.Hosts {
			if _, err := os.Stat(srv(h, "web/in-hook")); err != nil {
				return false
			}
		}
		return true
	}, func() { letGo(env.Hosts...) })
	for _, h := range killed {
		if err := h.Stop(); err != nil {
			t.Error(err)
		}
	}
	setLink(t, down, "down")
	letGo(rest...)
	res := <-done
	table, byHost := faultTable(res.rep)
	t.Logf("fault run: exit %d in %s (app timeout %s)\n%s", res.rep.ExitCode, res.took.Round(100*time.Millisecond), faultTimeout, table)

	if res.rep.ExitCode != exitFailed {
		t.Errorf("exit %d, want 1", res.rep.ExitCode)
	}
	if limit := faultTimeout + 15*time.Second; res.took > limit {
		t.Errorf("the run took %s, more than the app's timeout plus 15 s (%s)", res.took, limit)
	}
	for _, h := range killed {
		if o := byHost[h.Name]; o.OK || o.Error == "" {
			t.Errorf("killed host %s: ok=%v error %q, want a failure with its cause", h.Name, o.OK, o.Error)
		}
	}
	if o := byHost[down.Name]; o.OK || !strings.Contains(o.Error, "timed out after "+faultTimeout.String()) && !strings.Contains(o.Error, "connection lost") {
		t.Errorf("host %s with its link down: ok=%v error %q, want a timeout or a lost connection", down.Name, o.OK, o.Error)
	}
	if o := byHost[hung.Name]; o.OK || !strings.Contains(o.Error, "timed out after "+faultTimeout.String()+" (the app's timeout)") || !strings.Contains(o.Error, "before_switch[0]") {
		t.Errorf("host %s with a hung hook: ok=%v error %q, want the hook timed out", hung.Name, o.OK, o.Error)
	}
	pool := remote.NewPool(remote.Options{})
	t.Cleanup(func() { pool.Close() })
	for _, h := range rest {
		if o := byHost[h.Name]; !o.OK || o.After == v1[h.Name] {
			t.Errorf("%s: ok=%v error %q after %s, want v2 live and checked", h.Name, o.OK, o.Error, o.After)
		} else if got := fleetGet(t, pool, env, h); got != "hello from skiff demo v2" {
			t.Errorf("%s serves %q, want v2", h.Name, got)
		}
	}
	for _, h := range append([]*testenv.Host{hung}, rest...) {
		if _, err := os.Stat(srv(h, "web/.skiff/lock")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("reachable host %s is still locked (%v)", h.Name, err)
		}
	}
	if got := currentOf(t, srv(hung, "web")); got != v1[hung.Name] {
		t.Errorf("%s: current %s, want %s unchanged", hung.Name, got, v1[hung.Name])
	}
	if ids := releaseIDs(t, srv(hung, "web/releases")); len(ids) != 1 || ids[0] != v1[hung.Name] {
		t.Errorf("%s: releases %v, want only %s: the new release must be removed", hung.Name, ids, v1[hung.Name])
	}

	// The hosts come back.
	for _, h := range killed {
		if err := h.Restart(); err != nil {
			t.Fatal(err)
		}
	}
	setLink(t, down, "up")
	letGo(env.Hosts...)
	if r := e2eSkiff(t, "-i", inv, "--hosts", "h1,h2,h3,h4", "lock", "release", "--force", "web"); r.code != 0 {
		t.Fatalf("lock release --force on the unreachable hosts: %s", r)
	}
	rep, r, took := deploy("v3", "--only-failed")
	var names []string
	for _, h := range rep.Hosts {
		names = append(names, h.Host)
		if !h.OK {
			t.Errorf("deploy --only-failed: %s failed: %s", h.Host, h.Error)
		}
	}
	sort.Strings(names)
	t.Logf("deploy --only-failed: exit %d in %s on %v", rep.ExitCode, took.Round(100*time.Millisecond), names)
	if want := []string{"h1", "h2", "h3", "h4", "h5"}; rep.ExitCode != 0 || strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("deploy --only-failed: exit %d on %v, want exit 0 on exactly %v\n%s", rep.ExitCode, names, want, r)
	}
}

// faultTable renders the outcome of every host of a run as the table the fault run logs: host, outcome,
// cause, seconds.
func faultTable(rep report) (string, map[string]hostResult) {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 2, 8, 2, ' ', 0)
	fmt.Fprintln(w, "host\toutcome\tcause\tseconds")
	byHost := map[string]hostResult{}
	for _, h := range rep.Hosts {
		byHost[h.Host] = *h
		outcome, cause := "ok", "-"
		if !h.OK {
			outcome, cause = "FAILED", strings.ReplaceAll(h.Error, "\n", "; ")
			if len(cause) > 110 {
				cause = cause[:110] + "…"
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%.1f\n", h.Host, outcome, cause, float64(h.DurationMS)/1000)
	}
	w.Flush()
	return b.String(), byHost
}

// setLink sets the host's eth0 up or down from inside its network namespace.
func setLink(t *testing.T, h *testenv.Host, state string) {
	t.Helper()
	ip, err := exec.LookPath("ip")
	if err != nil {
		ip = "/usr/sbin/ip"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := h.Exec(ctx, ip, "link", "set", "eth0", state).CombinedOutput(); err != nil {
		t.Fatalf("%s: ip link set eth0 %s: %v\n%s", h.Name, state, err, out)
	}
}

// waitFor polls cond until it holds; past timeout it runs onFail and fails the test.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool, onFail func()) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			onFail()
			t.Fatalf("waited %s for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// currentOf is the release id an app directory's current link names, as the test sees the host's files.
func currentOf(t *testing.T, appDir string) string {
	t.Helper()
	target, err := os.Readlink(filepath.Join(appDir, "current"))
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Base(target)
}

// releaseIDs lists the release directories in dir.
func releaseIDs(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			ids = append(ids, e.Name())
		}
	}
	return ids
}
