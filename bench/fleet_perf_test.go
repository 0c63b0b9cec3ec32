package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// targetPerf samples the CPU of the fleet's side of a deploy (sshd, every remote command, supervisord and
// the programs it restarts) with Linux perf, restricted to the fleet's cgroup, so that a profile of skiff
// comes with one of the targets. It is nil where perf or the cgroup is missing.
type targetPerf struct {
	cmd  *exec.Cmd
	data string
	log  string // perf's own output
}

// startTargetPerf starts `perf record` of every CPU, for the processes of the fleet's cgroup only, writing
// to data. It logs and returns nil when that is not possible.
func startTargetPerf(tb testing.TB, cg *cpuGroup, data string) *targetPerf {
	tb.Helper()
	perf, err := exec.LookPath("perf")
	if err != nil || cg == nil {
		tb.Logf("no profile of the targets: perf %v, cgroup %v", err, cg != nil)
		return nil
	}
	mount, _, err := cgroupV2()
	if err != nil {
		tb.Logf("no profile of the targets: %v", err)
		return nil
	}
	rel, err := filepath.Rel(mount, cg.dir)
	if err != nil {
		tb.Logf("no profile of the targets: %v", err)
		return nil
	}
	cmd := exec.Command(perf, "record", "-q", "-a", "-F", "499", "-e", "cpu-clock", "-e", "sched:sched_process_exec", "-G", rel+","+rel, "-o", data)
	out, err := os.CreateTemp("", "perf-record-")
	if err != nil {
		tb.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		tb.Logf("no profile of the targets: %v", err)
		return nil
	}
	time.Sleep(500 * time.Millisecond) // perf opens its events per CPU before it samples
	return &targetPerf{cmd: cmd, data: data, log: out.Name()}
}

// stop ends the recording and writes perf's report by command and by command and shared object next to the
// data (data + ".comm.txt", data + ".dso.txt"), and the programs the targets started, per host and deploy of
// the deploys recorded (data + ".exec.txt").
func (p *targetPerf) stop(tb testing.TB, deploys int) {
	tb.Helper()
	if p == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGINT)
	p.cmd.Wait()
	defer os.Remove(p.log)
	if _, err := os.Stat(p.data); err != nil {
		msg, _ := os.ReadFile(p.log)
		tb.Logf("no profile of the targets: %v\n%s", err, tail(msg, 2000))
		return
	}
	for _, r := range []struct{ suffix, sort string }{{".comm.txt", "comm"}, {".dso.txt", "comm,dso"}} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		out, err := exec.CommandContext(ctx, "perf", "report", "-i", p.data, "--stdio", "--sort", r.sort,
			"--percent-limit", "0.5").CombinedOutput()
		cancel()
		if err != nil {
			tb.Logf("perf report: %v\n%s", err, tail(out, 2000))
			return
		}
		write(tb, p.data+r.suffix, stripComments(string(out)))
	}
	p.execs(tb, deploys)
	tb.Logf("CPU profile of the targets: %s (report by command: %s.comm.txt)", p.data, p.data)
}

// stripComments drops perf report's header lines and blank lines.
func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			continue
		}
		b.WriteString(l + "\n")
	}
	return b.String()
}

// execs writes how many times each program was started on the targets, per host and deploy.
func (p *targetPerf) execs(tb testing.TB, deploys int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "perf", "script", "-i", p.data, "-F", "trace").Output()
	if err != nil {
		tb.Logf("perf script: %v", err)
		return
	}
	counts := map[string]int{}
	total := 0
	for _, l := range strings.Split(string(out), "\n") {
		if _, rest, ok := strings.Cut(l, "filename="); ok {
			counts[strings.Fields(rest)[0]]++
			total++
		}
	}
	names := make([]string, 0, len(counts))
	for n := range counts {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		return counts[names[i]] > counts[names[j]] || counts[names[i]] == counts[names[j]] && names[i] < names[j]
	})
	var b strings.Builder
	fmt.Fprintf(&b, "programs started on the targets per host and deploy (%d deploys): %.1f in all\n", deploys, float64(total)/float64(deploys))
	for _, n := range names {
		fmt.Fprintf(&b, "%6.1f  %s\n", float64(counts[n])/float64(deploys), n)
	}
	write(tb, p.data+".exec.txt", b.String())
}
