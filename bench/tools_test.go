package bench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/internal/testenv"
)

// measurement is one timed run of one tool.
type measurement struct {
	wall   time.Duration
	maxRSS int64 // KiB, of the measured process itself
}

// timed runs cmd and returns its wall time and peak memory. Output goes to a buffer shown only on failure.
func timed(tb testing.TB, cmd *exec.Cmd) measurement {
	tb.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		tb.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out.String())
	}
	m := measurement{wall: time.Since(start)}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		m.maxRSS = ru.Maxrss
	}
	return m
}

// shell runs a pipeline through sh -c, for the baselines that are pipelines.
func shell(script string, env ...string) *exec.Cmd {
	cmd := exec.Command("sh", "-c", script)
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// median of repeated runs, each taken in turn with the other tools so that noise hits all of them alike.
func median(ms []measurement) measurement {
	s := append([]measurement(nil), ms...)
	sort.Slice(s, func(i, j int) bool { return s[i].wall < s[j].wall })
	best := s[len(s)/2]
	for _, m := range ms {
		if m.maxRSS > best.maxRSS {
			best.maxRSS = m.maxRSS
		}
	}
	return best
}

// sshOpts are the system ssh client options for a testenv host, as one string for -e and pipelines.
func sshOpts(env *testenv.Env, h *testenv.Host) string {
	return fmt.Sprintf("ssh -i %s -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes -o BatchMode=yes -p %d", env.KeyFile, env.KnownHosts, h.Port)
}

// buildSkiff compiles the CLI once for the benchmarks.
func buildSkiff(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "skiff")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/skiffdeploy/skiff/cmd/skiff").CombinedOutput()
	if err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}
