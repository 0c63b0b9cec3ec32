package bench

import (
	"bytes"
	"fmt"
	"math/rand"
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

// writeTree generates small files of 4 KiB and large ones of 100–400 KB, 100 per directory, from a fixed seed.
func writeTree(tb testing.TB, dir string, small, large int) int64 {
	tb.Helper()
	rng := rand.New(rand.NewSource(1))
	var total int64
	write := func(name string, size int) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		b := make([]byte, size)
		rng.Read(b)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			tb.Fatal(err)
		}
		total += int64(size)
	}
	for i := 0; i < small; i++ {
		write(fmt.Sprintf("src/d%03d/f%05d.txt", i/100, i), 4<<10)
	}
	for i := 0; i < large; i++ {
		write(fmt.Sprintf("assets/a%02d/blob%04d.bin", i/50, i), 100_000+rng.Intn(300_000))
	}
	return total
}

// writeBig writes size bytes of incompressible data without holding them in memory.
func writeBig(tb testing.TB, p string, size int64) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tb.Fatal(err)
	}
	f, err := os.Create(p)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	rng := rand.New(rand.NewSource(2))
	buf := make([]byte, 1<<20)
	for size > 0 {
		n := int64(len(buf))
		if size < n {
			n = size
		}
		rng.Read(buf[:n])
		if _, err := f.Write(buf[:n]); err != nil {
			tb.Fatal(err)
		}
		size -= n
	}
}
