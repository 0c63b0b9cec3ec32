package serve_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/internal/testenv"
)

// TestServe_Drain stops a server the way SIGTERM does: a running job finishes, an event that arrives while
// draining is queued but not started, and when the stop timeout ends first the running job is cancelled
// and recorded as interrupted.
func TestServe_Drain(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	env := testenv.Shared(t)
	h := env.Hosts[0]
	repo, commit := gitRepo(t, map[string]string{"VERSION": "v1\n"})
	base := filepath.Join(h.Root, "srv", fmt.Sprintf("serve-drain-%d", time.Now().UnixNano()%1e9))
	t.Cleanup(func() { os.RemoveAll(base) })
	var b strings.Builder
	for _, app := range []string{"short", "long", "late"} {
		fmt.Fprintf(&b, "[apps.%s]\nhosts = [\"h1\"]\npath = %s\n", app, testenv.TOMLString(filepath.Join(base, app)))
		switch app {
		case "short":
			b.WriteString("hooks.before_switch = [\"sleep 2\"]\n")
		case "long":
			b.WriteString("hooks.before_switch = [\"sleep 60\"]\n")
		}
		fmt.Fprintf(&b, "\n[[triggers]]\nname = %q\nkind = \"generic\"\nsecret_env = \"HOOK\"\napp = %q\nrepo = %s\n\n", app+"-ci", app, testenv.TOMLString(repo))
	}
	inv := env.WriteInventory(t, b.String())
	hs, late := listen(t)
	s := start(t, hs, late, inv, 2, map[string]string{"HOOK": "hook-secret"})
	send := func(app string) uint64 {
		body := []byte(fmt.Sprintf(`{"revision":%q,"id":%q}`, commit, app))
		code, ans := hook(t, s.url, app+"-ci", body, "X-Skiff-Signature", signature(body, "hook-secret"))
		return jobID(t, code, ans)
	}
	short, long := send("short"), send("long")
	for s.job(short).Status != "running" || s.job(long).Status != "running" {
		time.Sleep(20 * time.Millisecond)
	}
	drained := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
	defer cancel()
	go func() { drained <- s.srv.Drain(ctx) }()
	time.Sleep(200 * time.Millisecond)
	queued := send("late")
	err := <-drained
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("drain: %v, want the stop timeout to end it", err)
	}
	if j := s.job(short); j.Status != "ok" {
		t.Fatalf("the short job did not finish while draining: %s %s", j.Status, j.Error)
	}
	if j := s.job(long); j.Status != "interrupted" {
		t.Fatalf("the long job after the stop timeout: %s %s", j.Status, j.Error)
	}
	if j := s.job(queued); j.Status != "queued" {
		t.Fatalf("an event taken while draining: %s, want queued for the next start", j.Status)
	}
}
