package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/internal/testenv"
)

// The tests that need skiff as a process of its own (signals, a terminal) run this test binary with
// skiffAsMain set: it then is skiff.
const skiffAsMain = "SKIFF_TEST_BINARY_IS_SKIFF"

func init() {
	if os.Getenv(skiffAsMain) == "1" {
		main()
	}
}

// skiffCommand is skiff as a process of its own (this test binary, see skiffAsMain).
func skiffCommand(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), skiffAsMain+"=1")
	return cmd
}

// tickerProgram logs a numbered line every 100 ms on every fleet host.
const tickerProgram = `
[program:web]
command=/bin/sh -c 'i=0; while :; do echo "tick $i"; i=$((i+1)); sleep 0.1; done'
user=` + testenv.TestUserName + `
autostart=true
startsecs=0
stopasgroup=true
killasgroup=true
`

// lockedLines collects the lines of a stream and counts them by host.
type lockedLines struct {
	mu     sync.Mutex
	byHost map[string]int
	all    []string
}

func (l *lockedLines) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all = append(l.all, line)
	if host, _, ok := strings.Cut(line, " | "); ok {
		l.byHost[strings.TrimSpace(host)]++
	}
}

func (l *lockedLines) count(host string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byHost[host]
}

func (l *lockedLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.all, "\n")
}

func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool, out func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; output:\n%s", what, out())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestLogs_FollowSurvivesAHostGoingAway(t *testing.T) {
	env := testenv.Fleet(t, testenv.FleetOptions{Hosts: 3, Programs: tickerProgram})
	inv := env.WriteInventory(t, `[apps.web]
hosts = ["h1", "h2", "h3"]
path = "/srv/web"
supervisor.url = "`+testenv.FleetSupervisorURL+`"
supervisor.programs = ["web"]
`)
	cmd := skiffCommand(t, "-i", inv, "logs", "web", "-f", "-n", "3")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	var stderrMu sync.Mutex
	cmd.Stderr = writerFunc(func(p []byte) (int, error) {
		stderrMu.Lock()
		defer stderrMu.Unlock()
		return stderr.Write(p)
	})
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	lines := &lockedLines{byHost: map[string]int{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines.add(sc.Text())
		}
	}()
	output := func() string {
		stderrMu.Lock()
		defer stderrMu.Unlock()
		return lines.String() + "\n--- stderr ---\n" + stderr.String()
	}
	waitUntil(t, "lines of every host", time.Minute, func() bool {
		return lines.count("h1") >= 10 && lines.count("h2") >= 10 && lines.count("h3") >= 10
	}, output)

	if err := env.Hosts[1].Stop(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the report of h2 going away", time.Minute, func() bool {
		stderrMu.Lock()
		defer stderrMu.Unlock()
		return strings.Contains(stderr.String(), "h2: logs:")
	}, output)
	h1, h3 := lines.count("h1"), lines.count("h3")
	waitUntil(t, "more lines of h1 and h3", time.Minute, func() bool {
		return lines.count("h1") >= h1+20 && lines.count("h3") >= h3+20
	}, output)

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	<-done
	err = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("Ctrl-C: exit %d (%v), want 0\n%s", code, err, output())
	}
	for _, l := range strings.Split(lines.String(), "\n") {
		if !strings.Contains(l, " | tick ") {
			t.Errorf("line %q is not \"host | tick N\"", l)
			break
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
