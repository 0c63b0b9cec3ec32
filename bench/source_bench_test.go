package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/skiffdeploy/skiff/internal/testenv"
)

// sizes of the acceptance benchmark; SKIFF_BENCH_QUICK=1 shrinks them for a smoke run.
func sizes() (small, large int, big int64, rounds int) {
	if os.Getenv("SKIFF_BENCH_QUICK") == "1" {
		return 1000, 30, 64 << 20, 1
	}
	return 10000, 300, 1 << 30, 3
}

// row is one line of the printed table.
type row struct {
	scenario, target, tool string
	m                      measurement
	base                   string // the tool skiff is compared with on this line, "" for skiff's own lines
	note                   string
}

// bench holds what every scenario needs.
type bench struct {
	b     *testing.B
	env   *testenv.Env
	h     *testenv.Host
	skiff string
	ssh   string
	login string
	rows  []row
	runs  int
}

// BenchmarkSourceDeploy puts skiff's source deploy side by side with rsync -a, scp -r, `tar c | ssh tar x` and
// `cat | ssh cat >` on the same trees, over the same loopback sshd, onto disk and into a tmpfs, and prints the
// ratios and skiff's peak memory. Each round runs every tool once, in turn, so noise hits all of them alike;
// the median round counts.
func BenchmarkSourceDeploy(b *testing.B) {
	env := testenv.Shared(b)
	h := env.Hosts[0]
	small, large, big, rounds := sizes()
	bn := &bench{b: b, env: env, h: h, skiff: buildSkiff(b), ssh: sshOpts(env, h), login: env.User + "@" + h.IP}
	tree := filepath.Join(b.TempDir(), "tree")
	bytes := testenv.WriteBenchTree(b, tree, small, large)
	bigDir := filepath.Join(b.TempDir(), "big")
	testenv.WriteBigFile(b, filepath.Join(bigDir, "blob.bin"), big)
	b.Logf("tree: %d small + %d large files, %d MiB; big file %d MiB; %d round(s)", small, large, bytes>>20, big>>20, rounds)

	targets := []struct{ name, dir string }{{"disk", filepath.Join(h.Root, "bench-disk")}, {"tmpfs", bn.tmpfs()}}
	for i := 0; i < b.N; i++ {
		for _, t := range targets {
			if t.dir == "" {
				continue
			}
			bn.firstDeploy(t.name, t.dir, tree, rounds)
			bn.oneChange(t.name, t.dir, tree, 3*rounds) // a round takes a second or two: more of them steady the median
			bn.bigFile(t.name, t.dir, bigDir, big, rounds)
		}
	}
	bn.print()
}

// tmpfs mounts a tmpfs owned by the login user under the host's root, or returns "" when it cannot.
func (bn *bench) tmpfs() string {
	dir := filepath.Join(bn.h.Root, "bench-tmpfs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		bn.b.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=3g,mode=0755"); err != nil {
		bn.b.Logf("no tmpfs target (%v): measuring onto disk only", err)
		return ""
	}
	bn.b.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	os.Chown(dir, bn.env.UID, bn.env.GID)
	return filepath.Join(dir, "work")
}

// fresh empties dir (on the shared loopback filesystem) and recreates it for the login user.
func (bn *bench) fresh(dir string) {
	if err := os.RemoveAll(dir); err != nil {
		bn.b.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		bn.b.Fatal(err)
	}
	os.Chown(dir, bn.env.UID, bn.env.GID)
}

// deployCmd is `skiff deploy` of src into an app at path, through a one-app inventory. cache is the hash
// cache directory (SKIFF_HASH_CACHE): "off" for the first-deploy scenarios, which must hash everything as a
// fresh CI runner would; a directory of the run's own for redeploys, where it plays the part of rsync's
// size-and-mtime quick check.
func (bn *bench) deployCmd(path, src, cache string) *exec.Cmd {
	inv := filepath.Join(bn.b.TempDir(), "hosts.toml")
	app := fmt.Sprintf("\n[apps.bench]\nhosts = [%q]\npath = %q\nkeep_releases = 3\n", bn.h.Name, path)
	if err := os.WriteFile(inv, []byte(bn.env.InventoryTOML(app)), 0o644); err != nil {
		bn.b.Fatal(err)
	}
	cmd := exec.Command(bn.skiff, "-i", inv, "--json", "deploy", "bench", "--source", src)
	cmd.Env = append(os.Environ(), "SKIFF_HASH_CACHE="+cache)
	return cmd
}

// sent reads files and bytes sent from the JSON report of the last skiff run.
func sent(out []byte) (files, bytes int64) {
	var r struct {
		Hosts []struct {
			Files int64 `json:"files_sent"`
			Bytes int64 `json:"bytes_sent"`
		} `json:"hosts"`
	}
	if json.Unmarshal(out, &r) == nil && len(r.Hosts) == 1 {
		return r.Hosts[0].Files, r.Hosts[0].Bytes
	}
	return -1, -1
}

func (bn *bench) firstDeploy(target, dir, tree string, rounds int) {
	tools := map[string][]measurement{}
	for r := 0; r < rounds; r++ {
		bn.fresh(dir)
		tools["skiff"] = append(tools["skiff"], timed(bn.b, bn.deployCmd(filepath.Join(dir, "skiff"), tree, "off")))
		bn.fresh(dir)
		tools["rsync -a"] = append(tools["rsync -a"], timed(bn.b, exec.Command("rsync", "-a", "-e", bn.ssh, tree+"/", bn.login+":"+dir+"/rsync/")))
		bn.fresh(dir)
		tools["tar | ssh tar x"] = append(tools["tar | ssh tar x"], timed(bn.b, shell(fmt.Sprintf("tar cf - -C %s . | %s %s 'mkdir -p %s/tar && tar xf - -C %s/tar'", tree, bn.ssh, bn.login, dir, dir))))
		bn.fresh(dir)
		tools["scp -r"] = append(tools["scp -r"], timed(bn.b, exec.Command("scp", "-r", "-q", "-i", bn.env.KeyFile, "-o", "UserKnownHostsFile="+bn.env.KnownHosts, "-P", fmt.Sprint(bn.h.Port), tree, bn.login+":"+dir+"/scp")))
	}
	bn.fresh(dir)
	bn.compare("first deploy", target, tools, "rsync -a", "tar | ssh tar x", "scp -r")
}

func (bn *bench) oneChange(target, dir, tree string, rounds int) {
	bn.fresh(dir)
	changed := filepath.Join(tree, "src", "d000", "f00000.txt")
	orig, err := os.ReadFile(changed)
	if err != nil {
		bn.b.Fatal(err)
	}
	defer os.WriteFile(changed, orig, 0o644)
	skiffApp := filepath.Join(dir, "skiff")
	cache := bn.b.TempDir()
	timed(bn.b, bn.deployCmd(skiffApp, tree, cache))
	timed(bn.b, exec.Command("rsync", "-a", "-e", bn.ssh, tree+"/", bn.login+":"+dir+"/rsync/"))
	tools := map[string][]measurement{}
	var files, bytes int64
	for r := 0; r < rounds; r++ {
		if err := os.WriteFile(changed, []byte(fmt.Sprintf("change %d at %s\n", r, time.Now())), 0o644); err != nil {
			bn.b.Fatal(err)
		}
		cmd := bn.deployCmd(skiffApp, tree, cache)
		m := timed(bn.b, cmd)
		files, bytes = sent(cmd.Stdout.(interface{ Bytes() []byte }).Bytes())
		tools["skiff"] = append(tools["skiff"], m)
		tools["rsync -a"] = append(tools["rsync -a"], timed(bn.b, exec.Command("rsync", "-a", "-e", bn.ssh, tree+"/", bn.login+":"+dir+"/rsync/")))
		// Let the next round's change land in a new second: release ids are per second.
		time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	}
	bn.fresh(dir)
	bn.compare("one file changed", target, tools, "rsync -a")
	bn.rows[len(bn.rows)-1].note = fmt.Sprintf("sent %d file(s), %d bytes", files, bytes)
}

func (bn *bench) bigFile(target, dir, bigDir string, size int64, rounds int) {
	tools := map[string][]measurement{}
	for r := 0; r < rounds; r++ {
		bn.fresh(dir)
		tools["skiff"] = append(tools["skiff"], timed(bn.b, bn.deployCmd(filepath.Join(dir, "skiff"), bigDir, "off")))
		bn.fresh(dir)
		tools["cat | ssh cat >"] = append(tools["cat | ssh cat >"], timed(bn.b, shell(fmt.Sprintf("cat %s/blob.bin | %s %s 'cat > %s/blob.bin'", bigDir, bn.ssh, bn.login, dir))))
	}
	bn.fresh(dir)
	bn.compare(fmt.Sprintf("one %d MiB file", size>>20), target, tools, "cat | ssh cat >")
}

// compare adds skiff's row and one row per baseline with the ratio skiff/baseline.
func (bn *bench) compare(scenario, target string, tools map[string][]measurement, baselines ...string) {
	s := median(tools["skiff"])
	for _, base := range baselines {
		bn.rows = append(bn.rows, row{scenario: scenario, target: target, tool: base, m: median(tools[base]), base: base})
	}
	bn.rows = append(bn.rows, row{scenario: scenario, target: target, tool: "skiff", m: s})
	for _, base := range baselines {
		ratio := float64(s.wall) / float64(median(tools[base]).wall)
		bn.b.ReportMetric(ratio, fmt.Sprintf("skiff/%s/%s/%s", strings.ReplaceAll(scenario, " ", "_"), target, strings.Fields(base)[0]))
	}
	bn.runs++
}

func (bn *bench) print() {
	w := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "\nscenario\ttarget\ttool\tmedian\tskiff/tool\tpeak RSS\tnote")
	for i, r := range bn.rows {
		ratio := ""
		if r.base != "" {
			sk := bn.skiffRow(i)
			ratio = fmt.Sprintf("%.2f", float64(sk.m.wall)/float64(r.m.wall))
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d MiB\t%s\n", r.scenario, r.target, r.tool, r.m.wall.Round(time.Millisecond), ratio, r.m.maxRSS>>10, r.note)
	}
	w.Flush()
}

// skiffRow finds skiff's row of the same scenario and target as row i.
func (bn *bench) skiffRow(i int) row {
	for _, r := range bn.rows[i:] {
		if r.tool == "skiff" && r.scenario == bn.rows[i].scenario && r.target == bn.rows[i].target {
			return r
		}
	}
	return row{}
}
