package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// treeMeasure is one timed run of one tool and of every process it waited for: the wall time, the CPU time
// (user + system) of the whole process tree, and the peak resident memory of its largest process.
type treeMeasure struct {
	wall, cpu time.Duration
	maxRSS    int64         // KiB, the largest single process of the tree (wait4's ru_maxrss)
	targetCPU time.Duration // of the fleet's daemons and all they ran meanwhile (cpuGroup); -1 when unknown
	failed    bool          // the run failed (see fleetBench.baseline): nothing else holds
}

// timedTree runs cmd with its output in a file (a pipe would make Wait hang on a daemon that inherited it,
// such as an ssh ControlPersist master) and returns what it cost. It fails tb when cmd fails, with the output.
// CPU time comes from wait4's rusage, which counts every descendant that was waited for: the whole tree of
// xargs, rsync, ssh and sh, or of ansible-playbook's forks. Daemons that outlive the run are not counted.
//
// Peak memory is read through GNU time when it is installed: a child that Go starts with vfork inherits
// this process's own peak RSS into its ru_maxrss when it execs (fs/exec.c), so wait4's figure is never below
// the benchmark's own size. Without it, small tools show that size instead of theirs.
func timedTree(tb testing.TB, cmd *exec.Cmd) (treeMeasure, []byte) {
	tb.Helper()
	m, text, err := tryTimedTree(tb, cmd)
	if err != nil {
		tb.Fatal(err)
	}
	return m, text
}

// tryTimedTree is timedTree that returns a failure of cmd, with its output, as an error.
func tryTimedTree(tb testing.TB, cmd *exec.Cmd) (treeMeasure, []byte, error) {
	tb.Helper()
	out, err := os.CreateTemp("", "fleet-bench-out-")
	if err != nil {
		tb.Fatal(err)
	}
	defer os.Remove(out.Name())
	defer out.Close()
	rssFile := out.Name() + ".rss"
	defer os.Remove(rssFile)
	timeBin := gnuTime()
	if timeBin != "" {
		cmd.Args = append([]string{timeBin, "-f", "%M", "-o", rssFile, cmd.Path}, cmd.Args[1:]...)
		cmd.Path = timeBin
	}
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	err = cmd.Run()
	m := treeMeasure{wall: time.Since(start)}
	text, _ := os.ReadFile(out.Name())
	if err != nil {
		return m, text, fmt.Errorf("%s: %v\n%s\nlines that name an error:\n%s", strings.Join(cmd.Args, " "), err, tail(text, 8000), errorLines(text, 20))
	}
	m.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		m.maxRSS = ru.Maxrss
	}
	if timeBin != "" {
		rss, err := os.ReadFile(rssFile)
		f := strings.Fields(string(rss))
		if err != nil || len(f) == 0 {
			tb.Fatalf("%s: no peak memory from time: %v %q", strings.Join(cmd.Args, " "), err, rss)
		}
		if m.maxRSS, err = strconv.ParseInt(f[len(f)-1], 10, 64); err != nil {
			tb.Fatalf("%s: peak memory from time: %v", strings.Join(cmd.Args, " "), err)
		}
	}
	return m, text, nil
}

// gnuTime returns GNU time (Debian's package time), which reports its child's peak memory, or "" when it is
// not installed.
func gnuTime() string {
	if _, err := exec.LookPath("/usr/bin/time"); err != nil {
		return ""
	}
	return "/usr/bin/time"
}

// tail returns the last n bytes of b, for failure messages.
func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// errorLines returns up to n distinct lines of out that mention an error, for failures whose output is too
// long to show whole (skiff's JSON report of 200 hosts).
func errorLines(out []byte, n int) string {
	seen := map[string]bool{}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		l = strings.TrimSpace(l)
		if strings.Contains(strings.ToLower(l), "error") && !seen[l] && len(lines) < n {
			seen[l] = true
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

// medianTree takes the median wall time, CPU time and target CPU time of the rounds separately, and the
// highest peak memory of any round.
func medianTree(ms []treeMeasure) treeMeasure {
	if len(ms) == 0 {
		return treeMeasure{}
	}
	walls := make([]time.Duration, len(ms))
	cpus := make([]time.Duration, len(ms))
	targets := make([]time.Duration, len(ms))
	var m treeMeasure
	for i, x := range ms {
		walls[i], cpus[i], targets[i] = x.wall, x.cpu, x.targetCPU
		m.maxRSS = max(m.maxRSS, x.maxRSS)
	}
	m.wall, m.cpu, m.targetCPU = medianDuration(walls), medianDuration(cpus), medianDuration(targets)
	return m
}

// medianDuration is the middle value, or the mean of the two middle values of an even count.
func medianDuration(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// closeMasters asks every ssh ControlPersist master with a socket in dir to exit, so that the next timed run
// logs in from scratch like the other tools do and no ssh process outlives the benchmark.
func closeMasters(tb testing.TB, dir string) {
	tb.Helper()
	socks, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, s := range socks {
		fi, err := os.Lstat(s)
		if err != nil || fi.Mode()&os.ModeSocket == 0 {
			continue
		}
		exit := exec.Command("ssh", "-F", "/dev/null", "-o", "ControlPath="+s, "-O", "exit", "master")
		if out, err := exit.CombinedOutput(); err != nil {
			tb.Logf("closing ssh master %s: %v: %s", s, err, out)
			os.Remove(s)
		}
	}
	// The master removes its socket as it exits; wait for that, so no master is still busy in the next run.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*"))
	tb.Logf("ssh masters still closing: %s", fmt.Sprint(left))
}
