// Package remotetest holds test helpers that need both a real test host (testenv) and a connection to it
// (remote); testenv itself cannot import remote, whose tests use it.
package remotetest

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/internal/testenv"
	"github.com/skiffdeploy/skiff/remote"
)

var layoutSeq atomic.Int64

// Connect dials the first shared test host and returns a fresh, not yet existing app directory on it,
// removed when the test ends.
func Connect(tb testing.TB) (*remote.Conn, string, *testenv.Host) {
	tb.Helper()
	env := testenv.Shared(tb)
	return ConnectHost(tb, env, env.Hosts[0])
}

// ConnectHost dials h, a host of env or one started after it (whose key env.KnownHosts lacks), and returns a
// fresh, not yet existing app directory on it, removed when the test ends.
func ConnectHost(tb testing.TB, env *testenv.Env, h *testenv.Host) (*remote.Conn, string, *testenv.Host) {
	tb.Helper()
	knownHosts := filepath.Join(tb.TempDir(), "known_hosts")
	if err := os.WriteFile(knownHosts, []byte(h.KnownHostsLine+"\n"), 0o644); err != nil {
		tb.Fatal(err)
	}
	pool := remote.NewPool(remote.Options{})
	tb.Cleanup(func() { pool.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pool.Get(ctx, &remote.Target{Name: h.Name, Address: h.IP, Port: h.Port, User: env.User,
		IdentityFiles: []string{env.KeyFile}, KnownHosts: knownHosts})
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	dir := path.Join(h.Root, "srv", fmt.Sprintf("app%d", layoutSeq.Add(1)))
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return c, dir, h
}
