package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// watchCmdlines reads every process's command line on this machine (where the test hosts run) until stop is
// called, and reports whether any held needle.
func watchCmdlines(t *testing.T, needle string) (stop func() bool) {
	t.Helper()
	var seen atomic.Bool
	var scans atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			paths, _ := filepath.Glob("/proc/[0-9]*/cmdline")
			for _, p := range paths {
				if data, err := os.ReadFile(p); err == nil && bytes.Contains(data, []byte(needle)) {
					seen.Store(true)
				}
			}
			scans.Add(1)
		}
	}()
	return func() bool {
		cancel()
		<-done
		if scans.Load() < 2 {
			t.Errorf("/proc was scanned only %d time(s) during the run", scans.Load())
		}
		return seen.Load()
	}
}

func TestEnv_WrittenOnlyWhenChangedAndSecretNeverExposed(t *testing.T) {
	// t.Setenv: not parallel with the other tests.
	const secret1, secret2 = "s3cret-ONE-planted-5d1f", "s3cret-TWO-planted-88c2"
	a := newE2EApp(t, "envapp", appOptions{extra: `
[apps.envapp.env]
values = { APP_MODE = "prod" }
secret_env = ["E2E_ENV_DB_PASSWORD"]
`})
	envFile := filepath.Join(a.path, "shared", ".env")
	tree := e2eAppTree(t, "v1", nil)

	t.Setenv("E2E_ENV_DB_PASSWORD", "")
	r := a.skiff("deploy", a.name, "--source", tree)
	if r.code != exitUsage || !strings.Contains(r.stderr, "secret_env E2E_ENV_DB_PASSWORD is not set") {
		t.Fatalf("deploy without the secret: want exit 2 naming the variable, got %s", r)
	}
	if _, err := os.Stat(a.path); !os.IsNotExist(err) {
		t.Fatalf("the deploy without its secret touched the host: %v", err)
	}

	t.Setenv("E2E_ENV_DB_PASSWORD", secret1)
	stop := watchCmdlines(t, "s3cret-")
	verbose := a.mustSkiff(0, "--json", "-v", "deploy", a.name, "--source", tree)
	var rep report
	if err := json.Unmarshal([]byte(verbose.stdout), &rep); err != nil || len(rep.Hosts) != 1 || rep.Hosts[0].Outcome == nil {
		t.Fatalf("first deploy: %v\n%s", err, verbose)
	}
	first := rep.Hosts[0]
	if !strings.Contains(verbose.stderr, "envapp") {
		t.Errorf("-v logged nothing:\n%s", verbose)
	}
	if stop() {
		t.Error("a secret appeared in a command line on the target")
	}
	if !first.EnvWritten {
		t.Error("first deploy: env_written is false")
	}
	fi, err := os.Stat(envFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("shared/.env: %v, mode %v; want 0600", err, fi)
	}
	data, _ := os.ReadFile(envFile)
	if want := "APP_MODE=prod\nE2E_ENV_DB_PASSWORD=" + secret1 + "\n"; string(data) != want {
		t.Errorf("shared/.env = %q, want %q", data, want)
	}
	if link, err := os.Readlink(filepath.Join(a.path, "current", ".env")); err != nil || link != envFile {
		t.Errorf("current/.env links to %q, %v; want %s", link, err, envFile)
	}
	ino := fi.Sys().(*syscall.Stat_t).Ino

	time.Sleep(time.Second)
	second := a.deploy(0, tree)
	fi2, _ := os.Stat(envFile)
	if second.EnvWritten || fi2.Sys().(*syscall.Stat_t).Ino != ino || !fi2.ModTime().Equal(fi.ModTime()) {
		t.Errorf("same values: env_written %v, inode %d -> %d; want the file untouched", second.EnvWritten, ino, fi2.Sys().(*syscall.Stat_t).Ino)
	}

	envOut := a.skiff("--json", "env", a.name)
	if envOut.code != 0 || !strings.Contains(envOut.stdout, `"key": "APP_MODE"`) || !strings.Contains(envOut.stdout, `"matches_inventory": true`) {
		t.Errorf("skiff env: %s", envOut)
	}

	t.Setenv("E2E_ENV_DB_PASSWORD", secret2)
	time.Sleep(time.Second)
	stop = watchCmdlines(t, "s3cret-")
	third := a.deploy(0, tree)
	if stop() {
		t.Error("a secret appeared in a command line on the target")
	}
	data, _ = os.ReadFile(envFile)
	if !third.EnvWritten || !strings.Contains(string(data), secret2) || len(third.Restarted) == 0 || third.Restarted[0].NewPID == second.Restarted[0].NewPID {
		t.Errorf("changed secret: env_written %v, restarted %+v (before %+v), file %q", third.EnvWritten, third.Restarted, second.Restarted, data)
	}
	text := a.skiff("env", a.name)
	if text.code != 0 || !strings.Contains(text.stdout, "APP_MODE=prod") || !strings.Contains(text.stdout, "E2E_ENV_DB_PASSWORD=[redacted]") {
		t.Errorf("skiff env text: %s", text)
	}

	hist, _ := os.ReadFile(filepath.Join(a.path, ".skiff", "history.jsonl"))
	for _, s := range []string{secret1, secret2} {
		for what, text := range map[string]string{"history": string(hist), "-v output": verbose.all(), "skiff env": envOut.all() + text.all()} {
			if strings.Contains(text, s) {
				t.Errorf("the secret is in %s", what)
			}
		}
		js, _ := json.Marshal([]any{first, second, third})
		if strings.Contains(string(js), s) {
			t.Error("the secret is in --json")
		}
	}
}
