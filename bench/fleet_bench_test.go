package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/internal/testenv"
)

// fleetTools returns the contenders in the order of the table; skiff is compared with each of the others.
// SKIFF_BENCH_TOOLS="skiff,floor" runs some of them only (skiff always), for quick looks at skiff alone.
func fleetTools() []string {
	all := []string{"skiff", "ansible", "shell", "floor"}
	v := os.Getenv("SKIFF_BENCH_TOOLS")
	if v == "" {
		return all
	}
	tools := []string{"skiff"}
	for _, t := range all[1:] {
		for _, f := range strings.Split(v, ",") {
			if strings.TrimSpace(f) == t {
				tools = append(tools, t)
			}
		}
	}
	return tools
}

// toolLabel names a contender in the table.
func toolLabel(tool string) string {
	switch tool {
	case "skiff":
		return "skiff deploy --parallel N"
	case "ansible":
		return "ansible-playbook (synchronize, supervisorctl, wait_for)"
	case "shell":
		return "xargs -P N: rsync + ssh supervisorctl restart + port probe"
	default:
		return "parallel-ssh -p N true (login only)"
	}
}

// The two kinds of deploy the benchmark times.
const (
	modeFirst    = "first deploy"
	modeRedeploy = "redeploy"
)

// fleetSizes are the fleet sizes and rounds of each: 1, 10 and 50 hosts, and 200 with SKIFF_BENCH_LARGE=1;
// SKIFF_BENCH_QUICK=1 shrinks them for a smoke run, SKIFF_BENCH_FLEET="1,10,50" picks sizes by hand and
// SKIFF_BENCH_ROUNDS=N the rounds of every size. A round at 200 hosts takes minutes (Ansible alone about three),
// so the largest fleet gets two rounds of each kind and the whole run stays well under an hour.
func fleetSizes() (sizes []int, rounds func(n int) int) {
	rounds = func(n int) int {
		switch {
		case n >= 200:
			return 2
		case n >= 50:
			return 3
		default:
			return 5
		}
	}
	sizes = []int{1, 10, 50}
	if os.Getenv("SKIFF_BENCH_LARGE") == "1" {
		sizes = append(sizes, 200)
	}
	if os.Getenv("SKIFF_BENCH_QUICK") == "1" {
		sizes, rounds = []int{1, 5}, func(int) int { return 2 }
	}
	if v := os.Getenv("SKIFF_BENCH_FLEET"); v != "" {
		sizes = nil
		for _, f := range strings.Split(v, ",") {
			if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
				sizes = append(sizes, n)
			}
		}
	}
	if v, err := strconv.Atoi(os.Getenv("SKIFF_BENCH_ROUNDS")); err == nil && v > 0 {
		rounds = func(int) int { return v }
	}
	return sizes, rounds
}

// fleetRow is one line of a table: one tool at one fleet size, for one kind of deploy.
type fleetRow struct {
	hosts int
	mode  string
	tool  string
	m     treeMeasure
}

// BenchmarkFleet deploys a 200-file app to fleets of 1, 10 and 50 hosts (and 200 with SKIFF_BENCH_LARGE=1;
// each host its own sshd and supervisord in namespaces of its own) with skiff, an Ansible playbook and a shell
// loop, side by side with logging in alone (parallel-ssh true), and prints wall time, CPU time and peak memory
// of each with skiff's ratios, for first deploys and for redeploys. A first deploy finds nothing of its tool on
// any host: before each tool's run its program is stopped and its app directory removed on every host (untimed);
// a redeploy ships a new version over the last one. Each round runs every tool once, in an order that rotates,
// and the median round counts; the first-deploy rounds come first and leave every tool deployed for the
// redeploys. Small fleets first deploy once untimed, to warm the caches. It also prints what skiff asked of one
// host per deploy (remote commands, SFTP sessions and requests, tunnels, bytes: outcome.remote of
// `skiff deploy --json`) and its steps' durations.
//
// SKIFF_BENCH_PROFILE=FILE (relative to the repository) also writes a CPU profile of skiff at the largest fleet,
// merged from a few extra untimed redeploys, and its `go tool pprof -top` next to it, with a perf profile of the
// targets during those redeploys (see targetPerf); SKIFF_BENCH_MEMPROFILE=FILE
// a heap profile of one more first deploy and one more redeploy there (FILE-first, FILE-redeploy; see
// cmd/skiff's SKIFF_MEMPROFILE). SKIFF_BENCH_STARTSECS sets the programs' startsecs (supervisord's default,
// 1, unless set), SKIFF_BENCH_ANSIBLE_STRATEGY the playbook's strategy (free).
func BenchmarkFleet(b *testing.B) {
	skiff := buildSkiff(b)
	sizes, rounds := fleetSizes()
	startsecs := 1
	if v, err := strconv.Atoi(os.Getenv("SKIFF_BENCH_STARTSECS")); err == nil && v >= 0 {
		startsecs = v
	}
	var rows []fleetRow
	var costs []skiffCost
	for _, n := range sizes {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			cg := startInCPUGroup(b)
			env := startFleet(b, n, startsecs)
			if cg != nil {
				cg.back(b)
			}
			fb := &fleetBench{b: b, env: env, cg: cg, t: newTools(b, env, skiff), src: writeApp(b), rounds: rounds(n)}
			for i := 0; i < b.N; i++ {
				r, c := fb.run()
				rows, costs = append(rows, r...), append(costs, c...)
			}
			if n == sizes[len(sizes)-1] {
				if p := os.Getenv("SKIFF_BENCH_PROFILE"); p != "" {
					fb.profile(repoPath(p), 5)
				}
				if p := os.Getenv("SKIFF_BENCH_MEMPROFILE"); p != "" {
					fb.memProfile(repoPath(p))
				}
			}
		})
	}
	printFleet(os.Stdout, rows, costs, startsecs)
}

// repoPath makes a path given relative to the repository (where make runs) usable from bench/.
func repoPath(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join("..", p)
}

// startFleet starts n hosts that run one program per tool, and stops them in b.Cleanup. Starting a host costs
// about a quarter of a second of the machine's CPU (supervisord's start-up), so the deadline grows with n.
func startFleet(b *testing.B, n, startsecs int) *testenv.Env {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute+time.Duration(n)*2*time.Second)
	defer cancel()
	start := time.Now()
	env, err := testenv.StartFleet(ctx, testenv.FleetOptions{Hosts: n, Programs: fleetPrograms(startsecs)})
	if err != nil {
		b.Fatalf("start a fleet of %d: %v", n, err)
	}
	b.Cleanup(func() {
		if err := env.Close(); err != nil {
			b.Errorf("close fleet: %v", err)
		}
	})
	b.Logf("fleet of %d host(s) started in %s", n, time.Since(start).Round(100*time.Millisecond))
	return env
}

// fleetBench is one fleet size's run.
type fleetBench struct {
	b        *testing.B
	env      *testenv.Env
	cg       *cpuGroup // the fleet's daemons, for the targets' CPU; nil when cgroups are not available
	t        *tools
	src      string
	rounds   int
	version  int
	last     time.Time // of the last skiff deploy: release ids are per second
	retries  []string  // the baseline runs that failed once and were run again (see baseline)
	failures []string  // the baseline runs that failed twice, left out of their round
}

// run times the first-deploy rounds, then the redeploy rounds, and returns one row per tool and kind with what
// skiff's deploys cost one host.
func (fb *fleetBench) run() ([]fleetRow, []skiffCost) {
	n := len(fb.env.Hosts)
	fb.b.Logf("%d host(s), %d round(s) of each kind", n, fb.rounds)
	tools := fleetTools()
	if n <= 10 {
		fb.b.StopTimer()
		for _, tool := range tools {
			fb.wipe(tool)
			fb.deploy(tool, modeFirst)
		}
		fb.verify(nil)
		fb.b.StartTimer()
	}
	var rows []fleetRow
	var costs []skiffCost
	failed := map[string]bool{} // tools whose copy of the app may be stale: a run of theirs failed
	for _, mode := range []string{modeFirst, modeRedeploy} {
		ms := map[string][]treeMeasure{}
		var skiffRuns []skiffRun
		for r := 0; r < fb.rounds; r++ {
			fb.nextVersion()
			for k := range tools {
				tool := tools[(k+r)%len(tools)]
				if mode == modeFirst {
					fb.b.StopTimer()
					fb.wipe(tool)
					fb.b.StartTimer()
				}
				m, run := fb.deploy(tool, mode)
				if m.failed {
					failed[tool] = true
					continue
				}
				ms[tool] = append(ms[tool], m)
				if run != nil {
					skiffRuns = append(skiffRuns, *run)
				}
			}
			fb.verify(failed)
		}
		start := len(rows)
		for _, tool := range tools {
			if len(ms[tool]) > 0 {
				rows = append(rows, fleetRow{hosts: n, mode: mode, tool: tool, m: medianTree(ms[tool])})
			}
		}
		costs = append(costs, costOf(n, mode, skiffRuns))
		fb.report(rows[start:])
	}
	if len(fb.retries) > 0 {
		fb.b.Logf("baseline runs that failed once and were run again: %s", strings.Join(fb.retries, "; "))
	}
	if len(fb.failures) > 0 {
		fb.b.Logf("baseline runs that failed twice and are left out: %s", strings.Join(fb.failures, "; "))
	}
	return rows, costs
}

// report gives the benchmark framework skiff's ratios of one kind of deploy.
func (fb *fleetBench) report(rows []fleetRow) {
	prefix := "first-"
	if rows[0].mode == modeRedeploy {
		prefix = "re-"
	}
	sk := rows[0].m
	for _, r := range rows[1:] {
		fb.b.ReportMetric(float64(sk.wall)/float64(r.m.wall), prefix+"skiff/"+r.tool+"-wall")
	}
	fb.b.ReportMetric(float64(sk.maxRSS)/1024, prefix+"skiff-MiB")
}

// nextVersion writes a new VERSION into the app tree: the change every round ships.
func (fb *fleetBench) nextVersion() {
	fb.version++
	write(fb.b, filepath.Join(fb.src, "VERSION"), fmt.Sprintf("v%d\n", fb.version))
}

// deploy runs one tool once and returns what it cost, on this side and on the targets' (the fleet's cgroup,
// read once the tool's sessions have ended); for skiff also what its JSON report says. Ansible's ssh masters
// are closed after each run, so every run of every tool logs in from scratch.
func (fb *fleetBench) deploy(tool, mode string) (treeMeasure, *skiffRun) {
	var m treeMeasure
	var run *skiffRun
	if tool == "skiff" {
		if wait := time.Until(fb.last.Truncate(time.Second).Add(time.Second)); wait > 0 {
			time.Sleep(wait)
		}
	}
	before := fb.cg.usage()
	switch tool {
	case "skiff":
		var out []byte
		m, out = timedTree(fb.b, fb.t.skiffCmd(fb.src, nil))
		fb.last = time.Now()
		run = fb.skiffReport(out)
	default:
		m = fb.baseline(tool, mode)
	}
	m.targetCPU = -1
	if before >= 0 {
		time.Sleep(300 * time.Millisecond) // sshd's side of the last connections winds down
		m.targetCPU = fb.cg.usage() - before
	}
	return m, run
}

// baseline runs a contender other than skiff. A run that fails (a loaded machine makes the shell loop's own
// 30-second port wait, or an ssh login, give up now and then) is logged with its output and run once more, from
// a fresh wipe for a first deploy, and counted by fb.retries. A second failure is logged and counted by
// fb.failures, and the measurement is marked failed: the round leaves the tool out, and the others go on.
func (fb *fleetBench) baseline(tool, mode string) treeMeasure {
	cmd := func() *exec.Cmd {
		switch tool {
		case "ansible":
			return fb.t.ansibleCmd(fb.src)
		case "shell":
			return fb.t.shellCmd(fb.src)
		}
		return fb.t.floorCmd()
	}
	m, _, err := tryTimedTree(fb.b, cmd())
	if tool == "ansible" {
		closeMasters(fb.b, fb.t.ansCP)
	}
	if err == nil {
		return m
	}
	fb.b.Logf("%s failed at %d hosts (%s), running it again: %v", tool, len(fb.env.Hosts), mode, err)
	fb.retries = append(fb.retries, fmt.Sprintf("%s, %d hosts, %s", tool, len(fb.env.Hosts), mode))
	if mode == modeFirst {
		fb.b.StopTimer()
		fb.wipe(tool)
		fb.b.StartTimer()
	}
	m, _, err = tryTimedTree(fb.b, cmd())
	if tool == "ansible" {
		closeMasters(fb.b, fb.t.ansCP)
	}
	if err != nil {
		fb.b.Logf("%s failed again at %d hosts (%s), left out of this round: %v", tool, len(fb.env.Hosts), mode, err)
		fb.failures = append(fb.failures, fmt.Sprintf("%s, %d hosts, %s", tool, len(fb.env.Hosts), mode))
		m.failed = true
	}
	return m
}

// verify checks that every tool's copy of the app on every host holds the version shipped last, and that
// the programs run, except the copies of the tools in skip. It reads the hosts' files directly; the tools' own
// port checks proved the ports.
func (fb *fleetBench) verify(skip map[string]bool) {
	want := fmt.Sprintf("v%d\n", fb.version)
	var programs []string
	for _, tool := range fleetTools() {
		program, dir := toolTarget(tool)
		if program == "" || skip[tool] {
			continue
		}
		if tool == "skiff" {
			dir += "/current"
		}
		programs = append(programs, program)
		for _, h := range fb.env.Hosts {
			got, err := os.ReadFile(filepath.Join(h.Root, "srv", dir, "VERSION"))
			if err != nil || string(got) != want {
				fb.b.Fatalf("%s: /srv/%s/VERSION = %q, %v; want %q", h.Name, dir, got, err, want)
			}
		}
	}
	h := fb.env.Hosts[len(fb.env.Hosts)-1]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := h.Exec(ctx, "supervisorctl", "-s", testenv.FleetSupervisorURL, "status").CombinedOutput()
	for _, p := range programs {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(p) + `\s+RUNNING`).Match(out) {
			fb.b.Fatalf("%s: %s is not running: supervisorctl status: %v\n%s", h.Name, p, err, out)
		}
	}
}
