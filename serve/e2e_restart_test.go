package serve_test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildSkiff builds the skiff binary for tests that run `skiff serve` as a process of its own.
func buildSkiff(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "skiff")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/skiffdeploy/skiff/cmd/skiff").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// serveProcess is `skiff serve` running as a subprocess.
type serveProcess struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process has exited, with err set
	err  error
}

// startServe starts `skiff -i inv serve` with env and waits until /healthz answers.
func startServe(t testing.TB, bin, inv, url string, env []string) *serveProcess {
	t.Helper()
	logFile := filepath.Join(t.TempDir(), "serve.log")
	f, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(bin, "-i", inv, "serve", "--stop-timeout", "1m")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serveProcess{cmd: cmd, log: logFile, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	deadline := time.Now().Add(30 * time.Second)
	for httpGet(url+"/healthz") == "" {
		select {
		case <-p.done:
			t.Fatalf("skiff serve exited: %v\n%s", p.err, p.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("skiff serve not answering:\n%s", p.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p
}

func (p *serveProcess) output() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// TestServe_SIGKILLAndRestart kills `skiff serve` with SIGKILL while a job runs and two wait, and starts it
// again on the same store: the two queued jobs run, the cut one is interrupted, and its lock is removed
// once the app's timeout has passed. A SIGTERM then drains and exits 0.
func TestServe_SIGKILLAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	bin := buildSkiff(t)
	head, url := serveTable(t, 1)
	apps := newSourceApps(t, map[string]string{"VERSION": "v1\n"}, head, map[string]string{
		"slow": "timeout = \"8s\"\nhooks.before_switch = [\"sleep 60\"]\n",
	}, "slow", "b", "c")
	inv, base := apps.inv, apps.base
	envVars := []string{"SKIFF_SERVE_TOKEN=" + apiToken, "HOOK=" + hookSecret, "SKIFF_HASH_CACHE=off"}
	s := &liveServer{t: t, url: url}
	send := func(app string) uint64 { return apps.send(t, url, app, app+"-1") }

	first := startServe(t, bin, inv, url, envVars)
	slow := send("slow")
	lock := filepath.Join(base, "slow", ".skiff", "lock")
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := os.Stat(lock); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := os.Stat(lock); err != nil {
		t.Fatalf("the slow deploy never took its lock; log:\n%s\n%s", s.job(slow).Log, first.output())
	}
	queued := []uint64{send("b"), send("c")}
	for _, id := range queued {
		if j := s.job(id); j.Status != "queued" {
			t.Fatalf("job %d is %s, want queued behind the slow one (max_jobs = 1)", id, j.Status)
		}
	}
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.done

	second := startServe(t, bin, inv, url, envVars)
	if j := s.job(slow); j.Status != "interrupted" {
		t.Fatalf("the cut job is %s, want interrupted", j.Status)
	}
	for _, id := range queued {
		if j := s.wait(id, 2*time.Minute); j.Status != "ok" {
			t.Fatalf("queued job %d after the restart: %s %s\n%s", id, j.Status, j.Error, j.Log)
		}
	}
	deadline = time.Now().Add(time.Minute)
	for {
		if _, err := os.Stat(lock); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the interrupted job's lock is still there a minute after its timeout:\n%s", second.output())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(second.output(), "removed the lock it left on h1") {
		t.Fatalf("log does not say the lock was removed:\n%s", second.output())
	}

	if err := second.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	select {
	case <-second.done:
		if second.err != nil {
			t.Fatalf("skiff serve after SIGTERM: %v\n%s", second.err, second.output())
		}
	case <-ctx.Done():
		t.Fatalf("skiff serve did not stop on SIGTERM:\n%s", second.output())
	}
	if resp, err := http.Get(url + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatal("still answering after SIGTERM")
	}
}
