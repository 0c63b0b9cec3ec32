package deploy

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/compose"
	"github.com/skiffdeploy/skiff/release"
)

// TestDeployImage_Integration runs image deploys and rollbacks against the real Docker Engine, a real
// registry with basic auth and real sshd hosts, with docker-compose (standalone) on the host.
func TestDeployImage_Integration(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	fx := newImageFixture(t)

	t.Run("rollback returns to the exact digest after the tag moved", func(t *testing.T) {
		t.Parallel()
		a := fx.newImageApp(t, nil, "", composeOptions{})
		fx.retag(t, "latest", "v1")
		first := a.mustDeploy(t, "latest")
		if got := a.version(t); got != "v1" {
			t.Fatalf("after deploy of latest: serving %q, want v1", got)
		}
		second := a.mustDeploy(t, "v2")
		if got := a.version(t); got != "v2" {
			t.Fatalf("after deploy of v2: serving %q, want v2", got)
		}
		if second.Before != first.After || second.Image.Before.Digest != fx.digests["latest"] {
			t.Fatalf("second deploy: before %s (%+v), want %s", second.Before, second.Image.Before, first.After)
		}
		// CI deploys the same tag again: same release, nothing new to roll back to.
		again := a.deploy(t, "v2")
		if again.Err != nil || again.After != second.After || again.Image.After.Digest != fx.digests["v2"] {
			t.Fatalf("redeploy of v2: %v, after %s, want %s", again.Err, again.After, second.After)
		}
		v1 := fx.digests["latest"]
		// CI pushes a new "latest", and the host pulls it (by hand, or another app): the tag moves.
		fx.retag(t, "latest", "v3")
		if err := fx.reg.Pull(context.Background(), fx.repo+":latest"); err != nil {
			t.Fatal(err)
		}
		back := a.rollback(t, "")
		if back.Err != nil {
			t.Fatalf("rollback: %v\nlog:\n%s", back.Err, a.logs)
		}
		if back.After != first.After || back.Image.After.Digest != v1 {
			t.Fatalf("rollback went to %s (%+v), want %s at %s", back.After, back.Image.After, first.After, v1)
		}
		if got := a.version(t); got != "v1" {
			t.Fatalf("after rollback: serving %q, want v1", got)
		}
		ctrs := back.Image.Containers
		if len(ctrs) != 1 || ctrs[0].Image != fx.repo+"@"+v1 || ctrs[0].Status != "running" {
			t.Fatalf("after rollback: containers %+v, want one running %s@%s", ctrs, fx.repo, v1)
		}
		last := a.history(t)[len(a.history(t))-1]
		if last.Op != "rollback" || last.Result != release.ResultOK || last.Digest != v1 || last.Tag != "latest" || last.Previous != second.After {
			t.Fatalf("last history entry %+v", last)
		}

		// v2's image is removed from the host: going back to it must be refused, not pulled.
		if out, err := exec.Command("docker", "rmi", fx.repo+":v2").CombinedOutput(); err != nil {
			t.Fatalf("docker rmi v2: %v: %s", err, out)
		}
		refused := a.rollback(t, fx.digests["v2"][:len("sha256:")+12])
		if refused.Err == nil || !strings.Contains(refused.Err.Error(), "no longer on the host") {
			t.Fatalf("rollback to a removed image: err %v, want 'no longer on the host'", refused.Err)
		}
		if got := a.version(t); got != "v1" {
			t.Fatalf("after refused rollback: serving %q, want v1", got)
		}

		st, err := ImageStatus(context.Background(), a.conn, a.app)
		if err != nil {
			t.Fatal(err)
		}
		if st.Live == nil || st.Live.Digest != v1 || st.Pinned != fx.repo+"@"+v1 || len(st.Containers) != 1 || st.Containers[0].Status != "running" {
			t.Fatalf("status %+v", st)
		}
		rels, _, err := ImageReleases(context.Background(), a.conn, a.app)
		if err != nil {
			t.Fatal(err)
		}
		if len(rels) != 2 || !rels[0].Live || !rels[0].Present || rels[1].Live || rels[1].Present {
			t.Fatalf("releases %+v, want v1 live and present, v2 gone", rels)
		}
	})

	for _, tc := range []struct {
		name, tag string
		co        composeOptions
		want      string // in the error
	}{
		{name: "container that exits at once", tag: "crash", want: "exited with code 3"},
		{name: "container that never listens", tag: "deaf", want: "nothing listens on its port 8080"},
		{name: "container that turns unhealthy", tag: "nohealth", co: composeOptions{healthcheck: true}, want: "unhealthy"},
	} {
		t.Run(tc.name+" is rolled back", func(t *testing.T) {
			t.Parallel()
			a := fx.newImageApp(t, nil, "", tc.co)
			good := a.mustDeploy(t, "v1")
			bad := a.deploy(t, tc.tag)
			if bad.Err == nil || !strings.Contains(bad.Err.Error(), tc.want) {
				t.Fatalf("deploy %s: err %v, want %q\nlog:\n%s", tc.tag, bad.Err, tc.want, a.logs)
			}
			if !bad.RolledBack || bad.After != good.After || bad.Image.After.Digest != fx.digests["v1"] {
				t.Fatalf("deploy %s: rolled back %v to %s, want %s", tc.tag, bad.RolledBack, bad.After, good.After)
			}
			if got := a.version(t); got != "v1" {
				t.Fatalf("after failed deploy of %s: serving %q, want v1", tc.tag, got)
			}
			h := a.history(t)
			if n := len(h); n != 3 || h[1].Result != release.ResultFailed || h[1].Digest != fx.digests[tc.tag] || h[2].Op != "rollback" || h[2].Result != release.ResultOK || h[2].Digest != fx.digests["v1"] {
				t.Fatalf("history %+v", h)
			}
		})
	}

	t.Run("registry password stays secret", func(t *testing.T) {
		t.Parallel()
		a := fx.newImageApp(t, nil, "", composeOptions{})
		wrong := "wrong-" + randomHex(t, 8)
		watch := watchProcesses([]string{wrong, fx.reg.Password})

		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		bad := DeployImage(ctx, a.conn, a.app, a.host.Name, a.runOptions(wrong), a.options(t, "v1"))
		if bad.Err == nil || !strings.Contains(bad.Err.Error(), "docker login to "+fx.reg.Addr+" as ci") {
			t.Fatalf("deploy with a wrong password: err %v, want a docker login error", bad.Err)
		}
		if h := a.history(t); len(h) != 1 || h[0].Result != release.ResultFailed || h[0].Digest != "" || !strings.Contains(h[0].Error, "docker login") {
			t.Fatalf("history after a failed login: %+v", h)
		}
		good := a.mustDeploy(t, "v1")
		seen, logins := watch()

		t.Logf("saw %d docker login process(es) while scanning", logins)
		if logins == 0 {
			t.Errorf("never saw a docker login process while deploying: the scan proves nothing")
		}
		if len(seen) > 0 {
			t.Errorf("a password appeared in a process's argv or environment: %v", seen)
		}
		auth := base64.StdEncoding.EncodeToString([]byte("ci:" + fx.reg.Password))
		texts := map[string]string{"error": bad.Err.Error(), "log": a.logs.String(), "sshd log": a.host.Log()}
		wantNoSecrets(t, texts, a.app.Path, wrong, fx.reg.Password, auth)
		if good.Image.After == nil {
			t.Fatal("no live image after the good deploy")
		}
	})

	t.Run("credentials a killed run left are removed", func(t *testing.T) {
		t.Parallel()
		testKilledAfterLogin(t, fx)
	})

	t.Run("host without compose", func(t *testing.T) {
		t.Parallel()
		h := fx.env.StartHostWithout(t, "nocompose", "docker-compose")
		kh := filepath.Join(t.TempDir(), "known_hosts")
		if err := os.WriteFile(kh, []byte(h.KnownHostsLine+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		a := fx.newImageApp(t, h, kh, composeOptions{})
		out := a.deploy(t, "v1")
		if out.Err == nil || !strings.Contains(out.Err.Error(), "neither `docker compose` (v2 plugin") || !strings.Contains(out.Err.Error(), "docker-compose: not found") {
			t.Fatalf("deploy on a host without compose: err %v", out.Err)
		}
		if _, err := os.Stat(filepath.Join(a.app.Path, ".skiff", "lock")); !os.IsNotExist(err) {
			t.Fatalf("lock left behind: %v", err)
		}
	})

	t.Run("plugin forced on a host without it", func(t *testing.T) {
		t.Parallel()
		a := fx.newImageApp(t, nil, "", composeOptions{})
		img := a.options(t, "v1")
		img.Compose = compose.ForcePlugin
		out := DeployImage(context.Background(), a.conn, a.app, a.host.Name, a.runOptions(fx.reg.Password), img)
		if out.Err == nil || !strings.Contains(out.Err.Error(), "forced to the v2 plugin (`docker compose`), which does not work on the host") {
			t.Fatalf("deploy with the plugin forced: err %v", out.Err)
		}
		img.Compose = compose.ForceStandalone
		a.mustDeploy(t, "v1")
	})

	t.Run("dry run changes nothing", func(t *testing.T) {
		t.Parallel()
		a := fx.newImageApp(t, nil, "", composeOptions{})
		opts := a.runOptions(fx.reg.Password)
		opts.DryRun = true
		out := DeployImage(context.Background(), a.conn, a.app, a.host.Name, opts, a.options(t, "v2"))
		if out.Err != nil {
			t.Fatalf("dry run: %v", out.Err)
		}
		log := a.logs.String()
		for _, want := range []string{"would run: sh -c 'set -e\nmkdir -p \"$(dirname \"$1\")\"", "' skiff " + a.app.Path + "/compose.yaml  (with input on stdin, not shown)", "would run: docker --config " + a.app.Path + "/.skiff/docker login --username=ci --password-stdin " + fx.reg.Addr, "would run: docker --config " + a.app.Path + "/.skiff/docker pull " + fx.repo + ":v2", "would pin service app"} {
			if !strings.Contains(log, want) {
				t.Errorf("dry-run log lacks %q:\n%s", want, log)
			}
		}
		if strings.Contains(log, fx.reg.Password) {
			t.Errorf("dry-run log shows the registry password:\n%s", log)
		}
		if _, err := os.Stat(a.app.Path); !os.IsNotExist(err) {
			t.Fatalf("dry run created %s: %v", a.app.Path, err)
		}
	})
}

// watchProcesses scans every process's command line and environment until the returned function is
// called, which reports which of the secrets were seen and how many docker login processes were observed.
// isSkiff reports whether process pid is a skiff binary.
func isSkiff(pid string) bool {
	exe, err := os.Readlink("/proc/" + pid + "/exe")
	return err == nil && filepath.Base(exe) == "skiff"
}

func watchProcesses(secrets []string) func() (seen []string, logins int) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	found := map[string]bool{}
	loginPIDs := map[string]bool{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			ents, _ := os.ReadDir("/proc")
			for _, e := range ents {
				if _, err := strconv.Atoi(e.Name()); err != nil {
					continue
				}
				for _, f := range []string{"cmdline", "environ"} {
					data, err := os.ReadFile("/proc/" + e.Name() + "/" + f)
					if err != nil {
						continue
					}
					if f == "environ" && isSkiff(e.Name()) {
						continue // skiff takes its secrets from its own environment: a parallel test runs it so
					}
					if f == "cmdline" && bytes.Contains(data, []byte("login\x00--username=")) {
						loginPIDs[e.Name()] = true
					}
					for i, s := range secrets {
						if bytes.Contains(data, []byte(s)) {
							found[fmt.Sprintf("secret #%d in /proc/%s/%s", i, e.Name(), f)] = true
						}
					}
				}
			}
		}
	}()
	return func() ([]string, int) {
		close(stop)
		wg.Wait()
		var seen []string
		for s := range found {
			seen = append(seen, s)
		}
		return seen, len(loginPIDs)
	}
}
