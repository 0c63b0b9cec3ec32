package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/internal/testenv"
	"github.com/skiffdeploy/skiff/remote"
)

// TestDeploy_RolloutThreeHosts deploys one [apps.web] section to three hosts that look alike (same /srv/web,
// same supervisord socket, same port 8088, each in its own namespaces) in batches of two, with a host that
// fails in the first batch: the rollout stops there, --rollback-fleet puts the good host of the batch back,
// and --only-failed redeploys every host the last run did not leave on its release.
func TestDeploy_RolloutThreeHosts(t *testing.T) {
	t.Parallel()
	env := testenv.Fleet(t, testenv.FleetOptions{Hosts: 3, Programs: testenv.FleetWebProgram})
	inv := env.WriteInventory(t, `[apps.web]
hosts = ["h1", "h2", "h3"]
path = "/srv/web"
supervisor.url = "`+testenv.FleetSupervisorURL+`"
supervisor.programs = ["web"]
check.ports = [8088]
check.http = "http://127.0.0.1:8088/health"
check.timeout = "5s"
rollout.batch = 2
rollout.parallel = 2
rollout.max_fail = 0
`)
	pool := remote.NewPool(remote.Options{})
	t.Cleanup(func() { pool.Close() })
	serving := func(h *testenv.Host) string {
		t.Helper()
		return fleetGet(t, pool, env, h)
	}
	wantServing := func(want ...string) {
		t.Helper()
		for i, h := range env.Hosts {
			if got := serving(h); got != "hello from skiff demo "+want[i] {
				t.Errorf("%s serves %q, want version %s", h.Name, got, want[i])
			}
		}
	}
	var lastDeploy time.Time
	shipVersion := func(version string, args ...string) report {
		t.Helper()
		if now := time.Now(); now.Unix() == lastDeploy.Unix() {
			time.Sleep(now.Truncate(time.Second).Add(time.Second).Sub(now))
		}
		lastDeploy = time.Now()
		// Release VERSION fails to start on a host where /srv/web/fail-VERSION exists.
		src := e2eAppTree(t, version, func(dir string) {
			server, _ := os.ReadFile(filepath.Join(dir, "server.py"))
			e2eWrite(t, filepath.Join(dir, "server.py"), "import os, sys\nif os.path.exists('/srv/web/fail-"+version+"'):\n    sys.exit('failing on purpose')\n"+string(server))
		})
		r := e2eSkiff(t, append([]string{"-i", inv, "--json", "deploy", "web", "--source", src}, args...)...)
		var rep report
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Fatalf("deploy %s: %v\n%s", version, err, r)
		}
		return rep
	}
	hostErrors := func(rep report) string {
		var b strings.Builder
		for _, h := range rep.Hosts {
			fmt.Fprintf(&b, "%s ok=%v rolled_back=%v error=%q; ", h.Host, h.OK, h.Outcome != nil && h.Outcome.RolledBack, h.Error)
		}
		return b.String()
	}

	if rep := shipVersion("v1"); rep.ExitCode != 0 {
		t.Fatalf("first deploy: %s", hostErrors(rep))
	}
	wantServing("v1", "v1", "v1")

	// h2 is in the first batch with h1; once it fails, h3's batch does not start.
	failOnH2 := func(version string) { e2eWrite(t, filepath.Join(env.Hosts[1].Root, "srv", "web", "fail-"+version), "") }
	failOnH2("v2")
	rep := shipVersion("v2")
	if rep.ExitCode != exitFailed || len(rep.Hosts) != 3 || !rep.Hosts[0].OK || rep.Hosts[1].OK || !rep.Hosts[1].RolledBack ||
		!strings.Contains(rep.Hosts[2].Error, "not started") {
		t.Fatalf("deploy with a failing canary: exit %d, %s; want h1 ok, h2 rolled back, h3 not started", rep.ExitCode, hostErrors(rep))
	}
	wantServing("v2", "v1", "v1")

	failOnH2("v3")
	rep = shipVersion("v3", "--rollback-fleet")
	if rep.ExitCode != exitFailed || len(rep.Hosts) != 3 || rep.Hosts[0].OK || !rep.Hosts[0].RolledBack || !strings.Contains(rep.Hosts[0].Error, "rolled back with the fleet") {
		t.Fatalf("deploy --rollback-fleet: exit %d, %s; want h1 rolled back with the fleet", rep.ExitCode, hostErrors(rep))
	}
	wantServing("v2", "v1", "v1")

	// The last run failed on h2, never reached h3, and took h1 back with the fleet: all three take v4.
	rep = shipVersion("v4", "--only-failed")
	if rep.ExitCode != 0 || len(rep.Hosts) != 3 {
		t.Fatalf("deploy --only-failed: exit %d, %s; want all three hosts deployed", rep.ExitCode, hostErrors(rep))
	}
	for _, h := range rep.Hosts {
		if h.After == h.Before {
			t.Errorf("deploy --only-failed left %s on %s", h.Host, h.Before)
		}
	}
	wantServing("v4", "v4", "v4")

	// Now the last run succeeded everywhere: there is nothing to redeploy.
	rep = shipVersion("v4b", "--only-failed")
	if rep.ExitCode != 0 || len(rep.Hosts) != 0 {
		t.Fatalf("deploy --only-failed after a good run: exit %d, %s; want no host deployed", rep.ExitCode, hostErrors(rep))
	}

	if rep := shipVersion("v5"); rep.ExitCode != 0 {
		t.Fatalf("deploy to the whole fleet: %s", hostErrors(rep))
	}
	wantServing("v5", "v5", "v5")
}

// fleetGet fetches / from the app on 127.0.0.1:8088 as host h sees it, through an SSH connection to h.
func fleetGet(t *testing.T, pool *remote.Pool, env *testenv.Env, h *testenv.Host) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := pool.Get(ctx, &remote.Target{Name: h.Name, Address: h.IP, Port: h.Port, User: env.User,
		IdentityFiles: []string{env.KeyFile}, KnownHosts: env.KnownHosts})
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext:       func(ctx context.Context, _, addr string) (net.Conn, error) { return c.Dial(ctx, "tcp", addr) },
		DisableKeepAlives: true,
	}}
	resp, err := client.Get("http://127.0.0.1:8088/")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(body))
}
