package supervisor_test

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/internal/testenv"
	"github.com/skiffdeploy/skiff/supervisor"
)

// TestClient_CallTimeoutBoundsAHungSupervisord stops a real supervisord with SIGSTOP, so that its socket
// accepts and never answers, and expects a call with no deadline of its caller's to fail within CallTimeout.
func TestClient_CallTimeoutBoundsAHungSupervisord(t *testing.T) {
	s := startSupervisord(t, testenv.SupervisordOptions{})
	c := newClient(t, s.URL, supervisor.Options{CallTimeout: time.Second})
	if _, err := c.Process(testContext(t), "api"); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(s.PID(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(s.PID(), syscall.SIGCONT) })
	start := time.Now()
	_, err := c.Process(context.Background(), "api")
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("call to a stopped supervisord: err %v after %s, want a deadline error", err, took)
	}
	if took > 20*time.Second {
		t.Fatalf("call to a stopped supervisord took %s with CallTimeout 1s", took)
	}
}
