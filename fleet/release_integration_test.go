package fleet_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/fleet"
	"github.com/skiffdeploy/skiff/internal/testenv"
	"github.com/skiffdeploy/skiff/inventory"
)

// TestEngine_ClosesAHostsConnectionWhenItsDeployEnds deploys three times through one engine: each deploy opens
// its own connection, so two redeploys count the same remote commands instead of adding up, and a host that
// finished holds nothing until the whole run ends.
func TestEngine_ClosesAHostsConnectionWhenItsDeployEnds(t *testing.T) {
	env := testenv.Fleet(t, testenv.FleetOptions{Hosts: 1, NoSupervisord: true})
	inv, err := inventory.Load(env.WriteInventory(t, "[apps.web]\nhosts = [\"h1\"]\npath = \"/srv/web\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	e := fleet.New(fleet.Config{Inventory: inv, Who: fleet.Who{Operator: "test", Origin: "library"}})
	defer e.Close()
	src := t.TempDir()
	var requests []int64
	for _, version := range []string{"v1", "v2", "v3"} {
		write(t, filepath.Join(src, "VERSION"), version+"\n")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		rep, err := e.Deploy(ctx, fleet.DeployRequest{App: "web", Source: src})
		cancel()
		if err != nil || len(rep.Hosts) != 1 || !rep.Hosts[0].OK {
			t.Fatalf("deploy %s: %v %+v", version, err, rep)
		}
		o := rep.Hosts[0].Outcome
		if o.Remote == nil || o.Remote.SFTPRequests == 0 {
			t.Fatalf("deploy %s: no remote counts: %+v", version, o.Remote)
		}
		requests = append(requests, o.Remote.SFTPRequests)
		time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second))) // release ids are per second
	}
	if requests[2] > requests[1]*3/2 {
		t.Fatalf("SFTP requests per deploy %v: a redeploy counted on an earlier deploy's connection", requests)
	}
}
