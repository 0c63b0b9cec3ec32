package fleet_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/fleet"
	"github.com/skiffdeploy/skiff/internal/testenv"
	"github.com/skiffdeploy/skiff/inventory"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// events records what the engine sends, per host, in arrival order.
type events struct {
	mu     sync.Mutex
	byHost map[string][]fleet.Event
}

func (e *events) add(ev fleet.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.byHost[ev.Host] = append(e.byHost[ev.Host], ev)
}

// take returns what was recorded since the last take and forgets it.
func (e *events) take() map[string][]fleet.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	got := e.byHost
	e.byHost = map[string][]fleet.Event{}
	return got
}

// TestEngine_DeployCanaryRollbackFleetOnlyFailed drives the fleet engine as a library, without the CLI: a
// deploy to three look-alike hosts in batches of two, a deploy whose canary batch fails with --rollback-fleet,
// and --only-failed, checking per-host results and that each host's events arrive in order and end with its
// one result.
func TestEngine_DeployCanaryRollbackFleetOnlyFailed(t *testing.T) {
	env := testenv.Fleet(t, testenv.FleetOptions{Hosts: 3, Programs: testenv.FleetWebProgram})
	file := env.WriteInventory(t, `[apps.web]
hosts = ["h1", "h2", "h3"]
path = "/srv/web"
supervisor.url = "`+testenv.FleetSupervisorURL+`"
supervisor.programs = ["web"]
check.ports = [8088]
check.timeout = "5s"
rollout.batch = 2
rollout.parallel = 2
rollout.max_fail = 0
`)
	inv, err := inventory.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	rec := &events{byHost: map[string][]fleet.Event{}}
	e := fleet.New(fleet.Config{Inventory: inv, Who: fleet.Who{Operator: "test", Origin: "library"}, Events: rec.add})
	defer e.Close()

	root, err := os.MkdirTemp("", "skiff-fleet-src")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(root)
	server, err := os.ReadFile(filepath.Join("..", "examples", "app", "server.py"))
	if err != nil {
		t.Fatal(err)
	}
	var last time.Time
	deploy := func(version string, req fleet.DeployRequest) *fleet.Report {
		t.Helper()
		if now := time.Now(); now.Unix() == last.Unix() {
			time.Sleep(now.Truncate(time.Second).Add(time.Second).Sub(now))
		}
		last = time.Now()
		// Release VERSION fails to start on a host where /srv/web/fail-VERSION exists.
		src := filepath.Join(root, version)
		write(t, filepath.Join(src, "VERSION"), version+"\n")
		write(t, filepath.Join(src, "server.py"), "import os, sys\nif os.path.exists('/srv/web/fail-"+version+"'):\n    sys.exit('failing on purpose')\n"+string(server))
		req.App, req.Source = "web", src
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		rep, err := e.Deploy(ctx, req)
		if err != nil {
			t.Fatalf("deploy %s: %v", version, err)
		}
		checkEvents(t, version, rep, rec.take())
		return rep
	}
	states := func(rep *fleet.Report) string {
		var parts []string
		for _, h := range rep.Hosts {
			s := h.Host + "="
			switch {
			case h.OK:
				s += "ok"
			case h.Outcome != nil && h.Outcome.RolledBack:
				s += "rolled-back"
			case strings.Contains(h.Error, "not started"):
				s += "not-started"
			default:
				s += "failed(" + h.Error + ")"
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, " ")
	}

	if rep := deploy("v1", fleet.DeployRequest{}); states(rep) != "h1=ok h2=ok h3=ok" {
		t.Fatalf("first deploy: %s", states(rep))
	}
	write(t, filepath.Join(env.Hosts[1].Root, "srv", "web", "fail-v2"), "")
	rep := deploy("v2", fleet.DeployRequest{RollbackFleet: true})
	if got := states(rep); got != "h1=rolled-back h2=rolled-back h3=not-started" {
		t.Fatalf("failed canary with RollbackFleet: %s", got)
	}
	if !strings.Contains(rep.Hosts[0].Error, "rolled back with the fleet") {
		t.Errorf("h1's error does not say it went back with the fleet: %q", rep.Hosts[0].Error)
	}
	rep = deploy("v3", fleet.DeployRequest{OnlyFailed: true})
	if got := states(rep); got != "h1=ok h2=ok h3=ok" {
		t.Fatalf("OnlyFailed after the stopped rollout: %s; want all three", got)
	}
	if rep := deploy("v4", fleet.DeployRequest{OnlyFailed: true}); len(rep.Hosts) != 0 {
		t.Fatalf("OnlyFailed after a good run deployed %s", states(rep))
	}
}

// checkEvents checks that every host of the report sent its events in time order and ended with exactly one
// result, the one the report holds.
func checkEvents(t *testing.T, what string, rep *fleet.Report, got map[string][]fleet.Event) {
	t.Helper()
	if starts := got[""]; len(starts) == 0 || starts[0].Kind != fleet.EventStart {
		t.Errorf("%s: the request did not open with a start event: %+v", what, starts)
	}
	for _, h := range rep.Hosts {
		evs := got[h.Host]
		if len(evs) == 0 {
			t.Errorf("%s: no events from %s", what, h.Host)
			continue
		}
		for i := 1; i < len(evs); i++ {
			if evs[i].Time.Before(evs[i-1].Time) {
				t.Errorf("%s: %s's events out of order at %d: %v after %v", what, h.Host, i, evs[i].Time, evs[i-1].Time)
			}
		}
		for i, ev := range evs {
			if last := i == len(evs)-1; (ev.Kind == fleet.EventDone) != last {
				t.Errorf("%s: %s's event %d of %d is %q; want lines, then one result last", what, h.Host, i+1, len(evs), ev.Kind)
			}
		}
		if done := evs[len(evs)-1]; done.Result != h {
			t.Errorf("%s: %s's result event is not its result in the report", what, h.Host)
		}
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
