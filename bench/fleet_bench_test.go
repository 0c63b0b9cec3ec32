package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/internal/testenv"
)

// fleetTools returns the contenders in the order of the table; skiff is compared with each of the others.
func fleetTools() []string { return []string{"skiff", "ansible", "shell", "floor"} }

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

// fleetSizes are the fleet sizes and rounds of each; SKIFF_BENCH_QUICK=1 shrinks them for a smoke run,
// SKIFF_BENCH_FLEET="1,10,50" picks sizes by hand and SKIFF_BENCH_ROUNDS=N the rounds of every size.
func fleetSizes() (sizes []int, rounds func(n int) int) {
	rounds = func(n int) int {
		if n >= 50 {
			return 3
		}
		return 5
	}
	sizes = []int{1, 10, 50}
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

// fleetRow is one line of the table: one tool at one fleet size.
type fleetRow struct {
	hosts int
	tool  string
	m     treeMeasure
	note  string
}

// BenchmarkFleet redeploys a changed version of a 200-file app to fleets of 1, 10 and 50 hosts (each host
// its own sshd and supervisord in namespaces of its own) with skiff, an Ansible playbook and a shell loop,
// side by side with logging in alone (parallel-ssh true), and prints wall time, CPU time and peak memory of
// each with skiff's ratios. Every tool deploys once untimed first; then each round runs every tool once,
// in an order that rotates, and the median round counts. SKIFF_BENCH_PROFILE=FILE (relative to the
// repository) also writes a CPU profile of skiff at the largest fleet, merged from a few extra untimed
// deploys, and its `go tool pprof -top` next to it. SKIFF_BENCH_STARTSECS sets the programs' startsecs
// (supervisord's default, 1, unless set), SKIFF_BENCH_ANSIBLE_STRATEGY the playbook's strategy (free).
func BenchmarkFleet(b *testing.B) {
	skiff := buildSkiff(b)
	sizes, rounds := fleetSizes()
	startsecs := 1
	if v, err := strconv.Atoi(os.Getenv("SKIFF_BENCH_STARTSECS")); err == nil && v >= 0 {
		startsecs = v
	}
	var rows []fleetRow
	for _, n := range sizes {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			cg := startInCPUGroup(b)
			env := testenv.Fleet(b, testenv.FleetOptions{Hosts: n, Programs: fleetPrograms(startsecs)})
			if cg != nil {
				cg.back(b)
			}
			fb := &fleetBench{b: b, env: env, cg: cg, t: newTools(b, env, skiff), src: writeApp(b), rounds: rounds(n)}
			var r []fleetRow
			for i := 0; i < b.N; i++ {
				r = fb.run()
			}
			rows = append(rows, r...)
			if p := os.Getenv("SKIFF_BENCH_PROFILE"); p != "" && n == sizes[len(sizes)-1] {
				if !filepath.IsAbs(p) {
					p = filepath.Join("..", p) // relative to the repository, where make runs
				}
				fb.profile(p, 5)
			}
		})
	}
	printFleet(os.Stdout, rows, startsecs)
}

// fleetBench is one fleet size's run.
type fleetBench struct {
	b       *testing.B
	env     *testenv.Env
	cg      *cpuGroup // the fleet's daemons, for the targets' CPU; nil when cgroups are not available
	t       *tools
	src     string
	rounds  int
	version int
	last    time.Time // of the last skiff deploy: release ids are per second
	cost    string    // what skiff's last deploy asked of one host: commands, SFTP starts, upload step
}

// run deploys once with every tool untimed, then times the rounds and returns one row per tool.
func (fb *fleetBench) run() []fleetRow {
	fb.b.Logf("%d host(s), %d round(s)", len(fb.env.Hosts), fb.rounds)
	fb.b.StopTimer()
	tools := fleetTools()
	for _, tool := range tools {
		fb.deploy(tool)
	}
	first := fb.cost
	fb.verify()
	fb.b.StartTimer()
	ms := map[string][]treeMeasure{}
	var steps []map[string]time.Duration
	for r := 0; r < fb.rounds; r++ {
		fb.nextVersion()
		for k := range tools {
			tool := tools[(k+r)%len(tools)]
			m, s := fb.deploy(tool)
			ms[tool] = append(ms[tool], m)
			if s != nil {
				steps = append(steps, s)
			}
		}
		fb.verify()
	}
	fb.b.StopTimer()
	n := len(fb.env.Hosts)
	var rows []fleetRow
	for _, tool := range tools {
		rows = append(rows, fleetRow{hosts: n, tool: tool, m: medianTree(ms[tool])})
	}
	rows[0].note = "steps (median host, median round): " + stepSummary(steps) +
		"\n  remote per host, first deploy: " + first + "; redeploy: " + fb.cost
	sk := rows[0].m
	for _, r := range rows[1:] {
		fb.b.ReportMetric(float64(sk.wall)/float64(r.m.wall), "skiff/"+r.tool+"-wall")
		fb.b.ReportMetric(float64(sk.cpu)/float64(r.m.cpu), "skiff/"+r.tool+"-cpu")
		if sk.targetCPU >= 0 && r.m.targetCPU >= 0 {
			fb.b.ReportMetric(float64(sk.cpu+sk.targetCPU)/float64(r.m.cpu+r.m.targetCPU), "skiff/"+r.tool+"-cpu+target")
		}
	}
	fb.b.ReportMetric(float64(sk.maxRSS)/1024, "skiff-MiB")
	return rows
}

// nextVersion writes a new VERSION into the app tree: the change every round ships.
func (fb *fleetBench) nextVersion() {
	fb.version++
	write(fb.b, filepath.Join(fb.src, "VERSION"), fmt.Sprintf("v%d\n", fb.version))
}

// deploy runs one tool once and returns what it cost, on this side and on the targets' (the fleet's cgroup,
// read once the tool's sessions have ended); for skiff also the per-step durations of its median host.
// Ansible's ssh masters are closed after each run, so every run of every tool logs in from scratch.
func (fb *fleetBench) deploy(tool string) (treeMeasure, map[string]time.Duration) {
	var m treeMeasure
	var steps map[string]time.Duration
	if tool == "skiff" {
		if wait := time.Until(fb.last.Truncate(time.Second).Add(time.Second)); wait > 0 {
			time.Sleep(wait)
		}
	}
	before := fb.cg.usage()
	switch tool {
	case "skiff":
		var out []byte
		m, out = timedTree(fb.b, fb.t.skiffCmd(fb.src, ""))
		fb.last = time.Now()
		steps = fb.skiffSteps(out)
	case "ansible":
		m, _ = timedTree(fb.b, fb.t.ansibleCmd(fb.src))
		closeMasters(fb.b, fb.t.ansCP)
	case "shell":
		m, _ = timedTree(fb.b, fb.t.shellCmd(fb.src))
	default:
		m, _ = timedTree(fb.b, fb.t.floorCmd())
	}
	m.targetCPU = -1
	if before >= 0 {
		time.Sleep(300 * time.Millisecond) // sshd's side of the last connections winds down
		m.targetCPU = fb.cg.usage() - before
	}
	return m, steps
}

// skiffSteps checks skiff's JSON report (every host ok) and returns the median host's duration of each step.
func (fb *fleetBench) skiffSteps(out []byte) map[string]time.Duration {
	var rep struct {
		Hosts []struct {
			Host  string `json:"host"`
			OK    bool   `json:"ok"`
			Error string `json:"error"`
			Steps []struct {
				Step string `json:"step"`
				MS   int64  `json:"duration_ms"`
			} `json:"steps"`
			Remote *struct {
				Commands   int64 `json:"commands"`
				SFTPStarts int64 `json:"sftp_starts"`
			} `json:"remote"`
		} `json:"hosts"`
	}
	if err := json.Unmarshal(out, &rep); err != nil || len(rep.Hosts) != len(fb.env.Hosts) {
		fb.b.Fatalf("skiff report: %v\n%s", err, tail(out, 4000))
	}
	per := map[string][]time.Duration{}
	fb.cost = "not reported"
	for _, h := range rep.Hosts {
		if h.Remote != nil && h.Host == rep.Hosts[0].Host {
			up := time.Duration(-1)
			for _, s := range h.Steps {
				if s.Step == "upload" {
					up = time.Duration(s.MS) * time.Millisecond
				}
			}
			fb.cost = fmt.Sprintf("%d commands (sessions + shells), %d SFTP start(s), upload step %s (host %s)",
				h.Remote.Commands, h.Remote.SFTPStarts, up, h.Host)
		}
		if !h.OK {
			fb.b.Fatalf("skiff: %s failed: %s", h.Host, h.Error)
		}
		for _, s := range h.Steps {
			per[s.Step] = append(per[s.Step], time.Duration(s.MS)*time.Millisecond)
		}
	}
	med := map[string]time.Duration{}
	for step, ds := range per {
		med[step] = medianDuration(ds)
	}
	return med
}

// verify checks that every tool's copy of the app on every host holds the version shipped last, and that
// the programs run. It reads the hosts' files directly; the tools' own port checks proved the ports.
func (fb *fleetBench) verify() {
	want := fmt.Sprintf("v%d\n", fb.version)
	for _, h := range fb.env.Hosts {
		for _, dir := range []string{"app/current", "ansible-app", "shell-app"} {
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
	if err != nil || strings.Count(string(out), "RUNNING") != 3 {
		fb.b.Fatalf("%s: supervisorctl status: %v\n%s", h.Name, err, out)
	}
}

// stepSummary renders the median over rounds of each step's median-host duration, in the order of a deploy.
func stepSummary(rounds []map[string]time.Duration) string {
	per := map[string][]time.Duration{}
	for _, r := range rounds {
		for step, d := range r {
			per[step] = append(per[step], d)
		}
	}
	order := map[string]int{"lock": 0, "upload": 1, "shared": 2, "switch": 3, "restart": 4, "check": 5, "retain": 6}
	names := make([]string, 0, len(per))
	for s := range per {
		names = append(names, s)
	}
	sort.Slice(names, func(i, j int) bool {
		oi, ok1 := order[names[i]]
		oj, ok2 := order[names[j]]
		if ok1 != ok2 {
			return ok1
		}
		if oi != oj {
			return oi < oj
		}
		return names[i] < names[j]
	})
	parts := make([]string, len(names))
	for i, s := range names {
		parts[i] = fmt.Sprintf("%s %s", s, medianDuration(per[s]).Round(time.Millisecond))
	}
	return strings.Join(parts, ", ")
}
