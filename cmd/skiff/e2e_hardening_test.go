package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/internal/testenv"
)

// The hardening tests: what a broken or hostile target, a hung step or a lost host can do to a run. Some run
// the real binary, where a crash, the peak memory or the process environment is what is tested.

// binResult is one run of the binary.
type binResult struct {
	e2eResult
	maxRSSKiB int64
	took      time.Duration
}

// runBinary runs the skiff binary with exactly env and args and waits for it (at most e2eRunTimeout).
func runBinary(t *testing.T, env []string, args ...string) binResult {
	t.Helper()
	return startBinary(t, env, args...).wait()
}

// binRun is a skiff binary started by startBinary.
type binRun struct {
	cmd            *exec.Cmd
	stdout, stderr *bytes.Buffer
	start          time.Time
}

// startBinary starts the skiff binary with exactly env and args.
func startBinary(t *testing.T, env []string, args ...string) *binRun {
	t.Helper()
	cmd := exec.Command(testenv.SkiffBinary(t), args...)
	cmd.Env = env
	b := &binRun{cmd: cmd, stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, start: time.Now()}
	cmd.Stdout, cmd.Stderr = b.stdout, b.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return b
}

// wait waits for the binary to exit (killing it after e2eRunTimeout) and returns what it did.
func (b *binRun) wait() binResult {
	cmd, stdout, stderr, start := b.cmd, b.stdout, b.stderr, b.start
	timer := time.AfterFunc(e2eRunTimeout, func() { _ = cmd.Process.Kill() })
	err := cmd.Wait()
	timer.Stop()
	r := binResult{e2eResult: e2eResult{stdout: stdout.String(), stderr: stderr.String()}, took: time.Since(start)}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.maxRSSKiB = ru.Maxrss
	}
	r.code = cmd.ProcessState.ExitCode()
	if err != nil && r.code < 0 {
		r.code = -1
	}
	return r
}

// baseEnv is the environment the binary runs with: no agent, no SKIFF_* of the test process.
func baseEnv(home string) []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "SKIFF_HASH_CACHE=off"}
}

// TestDeploy_HugeHistoryFailsOnlyThatHost gives one host of three a 1 TiB sparse history.jsonl (no disk used):
// that host fails with an error naming the file and its size, the two others deploy, and skiff's peak memory
// stays small.
func TestDeploy_HugeHistoryFailsOnlyThatHost(t *testing.T) {
	t.Parallel()
	env := testenv.Fleet(t, testenv.FleetOptions{Hosts: 3, NoSupervisord: true})
	inv := env.WriteInventory(t, `[apps.web]
hosts = ["h1", "h2", "h3"]
path = "/srv/web"
`)
	skiffDir := filepath.Join(env.Hosts[1].Root, "srv", "web", ".skiff")
	env.MkdirOwned(t, skiffDir)
	hist := filepath.Join(skiffDir, "history.jsonl")
	f, err := os.Create(hist)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 40); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Chown(hist, env.UID, env.GID); err != nil {
		t.Fatal(err)
	}
	r := runBinary(t, baseEnv(t.TempDir()), "-i", inv, "--json", "deploy", "web", "--source", e2eAppTree(t, "v1", nil))
	t.Logf("skiff deploy: exit %d in %s, peak RSS %d MiB", r.code, r.took.Round(time.Millisecond), r.maxRSSKiB>>10)
	var rep report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("no JSON report: %v\n%s", err, r)
	}
	if r.code != exitFailed || len(rep.Hosts) != 3 {
		t.Fatalf("want exit 1 with three hosts, got %s", r)
	}
	for _, h := range rep.Hosts {
		switch h.Host {
		case "h2":
			if want := "/srv/web/.skiff/history.jsonl is 1099511627776 bytes, more than the"; h.OK || !strings.Contains(h.Error, want) {
				t.Errorf("h2: ok=%v error %q, want a failure with %q", h.OK, h.Error, want)
			}
		default:
			if !h.OK || h.After == "" {
				t.Errorf("%s: ok=%v error %q, want deployed", h.Host, h.OK, h.Error)
			}
		}
	}
	if r.maxRSSKiB > 100<<10 {
		t.Errorf("peak RSS %d MiB, want under 100 MiB", r.maxRSSKiB>>10)
	}
	if _, err := os.Stat(filepath.Join(skiffDir, "lock")); err == nil {
		t.Errorf("h2 is left locked")
	}
}

// TestDeploy_HookTimeoutFailsTheHost runs a before_switch hook that sleeps 600 s under timeout = "5s": the
// host fails well within 20 s, current is unchanged, the new release is gone and no lock is left.
func TestDeploy_HookTimeoutFailsTheHost(t *testing.T) {
	t.Parallel()
	a := newE2EApp(t, "hang", appOptions{supervisor: supervisorNone,
		extra: "timeout = \"5s\"\nhooks.before_switch = [\"if [ -e ../../hang ]; then sleep 600; fi\"]"})
	good := a.deploy(0, e2eAppTree(t, "h1", nil)).After
	e2eWrite(t, filepath.Join(a.path, "hang"), "")
	start := time.Now()
	h := a.deploy(exitFailed, e2eAppTree(t, "h2", nil))
	took := time.Since(start)
	t.Logf("deploy with a hung hook failed after %s: %s", took.Round(time.Millisecond), h.Error)
	if took > 20*time.Second {
		t.Errorf("the deploy took %s, want under 20 s with timeout 5s", took)
	}
	if !strings.Contains(h.Error, "timed out after 5s (the app's timeout)") || !strings.Contains(h.Error, "before_switch[0]") {
		t.Errorf("error %q does not say the hook ran out of the app's timeout", h.Error)
	}
	if got := a.current(); got != good {
		t.Errorf("current = %s, want %s unchanged", got, good)
	}
	if got := a.releases(); len(got) != 1 || got[0] != good {
		t.Errorf("releases %v, want only %s: the new release must be removed", got, good)
	}
	if _, err := os.Stat(filepath.Join(a.path, ".skiff", "lock")); err == nil {
		t.Errorf("the lock is left behind")
	}
}

// TestRollback_SkipsACorruptHistoryLine corrupts the middle line of a history, as a disk that filled during
// an append does: rollback still works and warns, naming the host, the file and the line.
func TestRollback_SkipsACorruptHistoryLine(t *testing.T) {
	t.Parallel()
	a := newE2EApp(t, "corrupt", appOptions{supervisor: supervisorNone})
	first := a.deploy(0, e2eAppTree(t, "c1", nil)).After
	second := a.deploy(0, e2eAppTree(t, "c2", nil)).After
	hist := filepath.Join(a.path, ".skiff", "history.jsonl")
	data, err := os.ReadFile(hist)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	corrupt := lines[0] + `{"time":"2026-11-22T10:15:00Z","op":"deploy","app":"corr` + "\n" + strings.Join(lines[1:], "")
	e2eWrite(t, hist, corrupt)
	back := a.skiffJSON(0, "rollback", a.name)
	if back.After != first || back.Before != second {
		t.Fatalf("rollback went %s -> %s, want %s -> %s", back.Before, back.After, second, first)
	}
	want := "host h1: " + hist + " line 2 skipped"
	if len(back.Warnings) != 1 || !strings.Contains(back.Warnings[0], want) {
		t.Errorf("warnings %q, want one with %q", back.Warnings, want)
	}
	if r := a.mustSkiff(0, "rollback", a.name, "--to", second); !strings.Contains(r.all(), "WARNING: "+want) {
		t.Errorf("text output lacks the warning %q:\n%s", want, r)
	}
}

// TestCheck_KnownHostsSources checks host keys as OpenSSH does: a key that SKIFF_KNOWN_HOSTS revokes is
// refused (exit 4) although the inventory's known_hosts trusts it, and with no known_hosts in the inventory
// ~/.ssh/known_hosts is read, and written by --accept-new-host-keys.
func TestCheck_KnownHostsSources(t *testing.T) {
	t.Parallel()
	env := testenv.Shared(t)
	h := env.Hosts[0]
	trusted := env.WriteInventory(t, "")
	noKnownHosts := filepath.Join(t.TempDir(), "hosts.toml")
	e2eWrite(t, noKnownHosts, "[defaults]\nuser = "+testenv.TOMLString(env.User)+"\nidentity_files = ["+testenv.TOMLString(env.KeyFile)+"]\n\n"+h.InventoryEntry())

	revoked := append(baseEnv(t.TempDir()), "SKIFF_KNOWN_HOSTS=@revoked "+h.KnownHostsLine+"\n")
	if r := runBinary(t, revoked, "-i", trusted, "--hosts", h.Name, "check"); r.code != exitUnreachable || !strings.Contains(r.all(), "REVOKED") {
		t.Errorf("check with the key revoked in SKIFF_KNOWN_HOSTS: want exit 4 naming the revocation, got %s", r.e2eResult)
	}

	home := t.TempDir()
	e2eWrite(t, filepath.Join(home, ".ssh", "known_hosts"), h.KnownHostsLine+"\n")
	if r := runBinary(t, baseEnv(home), "-i", noKnownHosts, "check"); r.code != exitOK {
		t.Errorf("check with the key in ~/.ssh/known_hosts and no known_hosts set: want exit 0, got %s", r.e2eResult)
	}

	empty := t.TempDir()
	if r := runBinary(t, baseEnv(empty), "-i", noKnownHosts, "check"); r.code != exitUnreachable {
		t.Errorf("check with an empty home: want exit 4, got %s", r.e2eResult)
	}
	if r := runBinary(t, baseEnv(empty), "-i", noKnownHosts, "--accept-new-host-keys", "check"); r.code != exitOK {
		t.Errorf("check --accept-new-host-keys with an empty home: want exit 0, got %s", r.e2eResult)
	}
	if data, err := os.ReadFile(filepath.Join(empty, ".ssh", "known_hosts")); err != nil || !strings.Contains(string(data), h.KnownHostsLine) {
		t.Errorf("--accept-new-host-keys did not write ~/.ssh/known_hosts: %q, %v", data, err)
	}
}

// TestDeploy_Interrupt sends SIGINT to a deploy whose hook hangs: the first stops the run, which removes the
// new release and unlocks, leaving current as it was; a second SIGINT while it does so exits at once.
func TestDeploy_Interrupt(t *testing.T) {
	t.Parallel()
	a := newE2EApp(t, "interrupt", appOptions{supervisor: supervisorNone,
		// The hook ignores SIGTERM, so that stopping it takes skiff's grace before SIGKILL: time for a second signal.
		extra: "hooks.before_switch = [\"if [ -e ../../hang ]; then trap '' TERM; touch ../../in-hook; sleep 600; fi\"]"})
	good := a.deploy(0, e2eAppTree(t, "i1", nil)).After
	e2eWrite(t, filepath.Join(a.path, "hang"), "")
	env := baseEnv(t.TempDir())
	for _, tc := range []struct {
		name     string
		signals  int
		wantCode int
		wantLock bool
	}{
		{name: "once: roll back and unlock", signals: 1, wantCode: exitFailed},
		{name: "twice: exit now", signals: 2, wantCode: exitInterrupted, wantLock: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(filepath.Join(a.path, "in-hook"))
			time.Sleep(time.Second) // release ids have a resolution of one second
			b := startBinary(t, env, "-i", a.inv, "deploy", a.name, "--source", e2eAppTree(t, "i2", nil))
			waitFor(t, 30*time.Second, "the hook to start", func() bool {
				_, err := os.Stat(filepath.Join(a.path, "in-hook"))
				return err == nil
			}, func() { _ = b.cmd.Process.Kill() })
			sent := time.Now()
			for i := 0; i < tc.signals; i++ {
				if err := b.cmd.Process.Signal(os.Interrupt); err != nil {
					t.Fatal(err)
				}
				time.Sleep(100 * time.Millisecond)
			}
			r := b.wait()
			took := time.Since(sent)
			t.Logf("%d SIGINT: exit %d %s after the first", tc.signals, r.code, took.Round(time.Millisecond))
			if r.code != tc.wantCode || took > 20*time.Second {
				t.Fatalf("want exit %d within 20 s, got %s", tc.wantCode, r.e2eResult)
			}
			if got := a.current(); got != good {
				t.Errorf("current = %s, want %s", got, good)
			}
			lock := filepath.Join(a.path, ".skiff", "lock")
			if _, err := os.Stat(lock); (err == nil) != tc.wantLock {
				t.Errorf("lock left: %v, want %v", err == nil, tc.wantLock)
			}
			if tc.wantLock {
				os.RemoveAll(lock)
				return
			}
			if got := a.releases(); len(got) != 1 || got[0] != good {
				t.Errorf("releases %v, want only %s", got, good)
			}
		})
	}
}
