package bench

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cpuGroup is a cgroup (v2) that the fleet's daemons are started in, so that the CPU time of the targets'
// side of a deploy (sshd, every remote command and module, supervisord and the programs it restarts) can be
// read whole: a process tree's rusage loses whatever is orphaned, and sshd's session processes are.
type cpuGroup struct {
	dir  string // the group's directory
	home string // the cgroup.procs file of the group this process came from
}

// startInCPUGroup creates a cgroup next to this process's own and moves this process into it, so that what
// it starts until back() inherits the group. It returns nil, with a log line, where cgroup v2 is not mounted
// or not writable; the benchmark then reports no target CPU. The group is removed in tb.Cleanup, which must
// run after the fleet's: call it before starting the fleet.
func startInCPUGroup(tb testing.TB) *cpuGroup {
	tb.Helper()
	mount, rel, err := cgroupV2()
	if err != nil {
		tb.Logf("no target CPU figures: %v", err)
		return nil
	}
	g := &cpuGroup{
		dir:  filepath.Join(mount, rel, fmt.Sprintf("skiff-bench-%d-%d", os.Getpid(), time.Now().UnixNano())),
		home: filepath.Join(mount, rel, "cgroup.procs"),
	}
	if err := os.Mkdir(g.dir, 0o755); err != nil {
		tb.Logf("no target CPU figures: %v", err)
		return nil
	}
	if err := os.WriteFile(filepath.Join(g.dir, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		os.Remove(g.dir)
		tb.Logf("no target CPU figures: %v", err)
		return nil
	}
	tb.Cleanup(func() {
		g.back(tb)
		// The fleet is gone by now; its last processes may take a moment to be reaped.
		for i := 0; ; i++ {
			err := os.Remove(g.dir)
			if err == nil || errors.Is(err, os.ErrNotExist) {
				return
			}
			if i == 50 {
				tb.Logf("removing cgroup %s: %v", g.dir, err)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	return g
}

// back moves this process back to the group it came from; what it starts from then on is not counted.
func (g *cpuGroup) back(tb testing.TB) {
	if err := os.WriteFile(g.home, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		tb.Logf("leaving cgroup %s: %v", g.dir, err)
	}
}

// usage returns the CPU time used so far by every process that ever lived in the group, or -1.
func (g *cpuGroup) usage() time.Duration {
	if g == nil {
		return -1
	}
	f, err := os.Open(filepath.Join(g.dir, "cpu.stat"))
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "usage_usec "); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				return time.Duration(n) * time.Microsecond
			}
		}
	}
	return -1
}

// cgroupV2 finds the cgroup2 mount point and this process's group in it.
func cgroupV2() (mount, rel string, err error) {
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", "", err
	}
	for _, line := range strings.Split(string(own), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			rel = p
		}
	}
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", "", err
	}
	for _, line := range strings.Split(string(info), "\n") {
		// ... mount-point options - fstype source super-options
		pre, post, ok := strings.Cut(line, " - ")
		if f := strings.Fields(pre); ok && len(f) >= 5 && strings.HasPrefix(post, "cgroup2 ") {
			mount = f[4]
		}
	}
	if mount == "" || rel == "" {
		return "", "", errors.New("cgroup v2 is not mounted")
	}
	return mount, rel, nil
}
