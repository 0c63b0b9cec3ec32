package serve_test

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestServe_Drain stops a server the way SIGTERM does: a running job finishes, an event that arrives while
// draining is queued but not started, and when the stop timeout ends first the running job is cancelled
// and recorded as interrupted.
func TestServe_Drain(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	apps := newSourceApps(t, map[string]string{"VERSION": "v1\n"}, "", map[string]string{
		"short": "hooks.before_switch = [\"sleep 2\"]\n",
		"long":  "hooks.before_switch = [\"sleep 60\"]\n",
	}, "short", "long", "late")
	hs, late := listen(t)
	s := start(t, hs, late, apps.inv, 2, map[string]string{"HOOK": hookSecret})
	send := func(app string) uint64 { return apps.send(t, s.url, app, app) }
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
