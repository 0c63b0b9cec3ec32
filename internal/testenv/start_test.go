package testenv

import (
	"errors"
	"os"
	"testing"
	"time"
)

func TestStart_HostsAreDistinctAndCloseCleansUp(t *testing.T) {
	if _, err := findSSHD(t.Context()); errors.Is(err, ErrMissingTool) {
		SkipOrFail(t, err.Error())
	}
	begin := time.Now()
	e, err := Start(3)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("3 hosts started in %v", time.Since(begin))
	closed := false
	defer func() {
		if !closed {
			e.Close()
		}
	}()

	seen := map[string]string{}
	type proc struct {
		pid   int
		token string
	}
	var procs []proc
	for i, h := range e.Hosts {
		if want := "h" + string(rune('1'+i)); h.Name != want || e.Host(want) != h {
			t.Errorf("host %d named %q, want %q", i, h.Name, want)
		}
		if other, dup := seen[h.Addr]; dup {
			t.Errorf("%s and %s share %s", h.Name, other, h.Addr)
		}
		seen[h.Addr] = h.Name
		procs = append(procs, proc{h.proc.cmd.Process.Pid, h.token})
	}
	if e.Host("nope") != nil {
		t.Errorf("Host(nope) != nil")
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	if err := e.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := os.Stat(e.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Dir %s still exists: %v", e.Dir, err)
	}
	for _, p := range procs {
		if alive(p.pid) {
			t.Errorf("sshd %d survived Close", p.pid)
		}
		if left := markedProcs([]byte("SKIFF_TESTENV_TOKEN=" + p.token + "\x00")); len(left) > 0 {
			t.Errorf("session processes %v survived Close", left)
		}
	}
}

func BenchmarkStart_ThreeHosts(b *testing.B) {
	for b.Loop() {
		e, err := Start(3)
		if err != nil {
			b.Fatal(err)
		}
		if err := e.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
