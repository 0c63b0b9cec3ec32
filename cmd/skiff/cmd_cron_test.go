package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/inventory"
)

// cronOutput is a bytes.Buffer that cron's goroutines may write while the test reads it.
type cronOutput struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *cronOutput) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *cronOutput) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until the output holds want and returns the output at that moment.
func (s *cronOutput) waitFor(t *testing.T, want string) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		out := s.String()
		if strings.Contains(out, want) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("output never held %q:\n%s", want, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// hangingHost accepts TCP connections and never answers, so an SSH dial to it stays in the handshake.
type hangingHost struct {
	port     int
	accepted chan struct{}
}

func newHangingHost(t *testing.T) *hangingHost {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hangingHost{port: ln.Addr().(*net.TCPAddr).Port, accepted: make(chan struct{}, 100)}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			h.accepted <- struct{}{}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return h
}

// waitAccept waits for the next connection to the listener, that is for a job to be running against it.
func (h *hangingHost) waitAccept(t *testing.T, out *cronOutput) {
	t.Helper()
	select {
	case <-h.accepted:
	case <-time.After(15 * time.Second):
		t.Fatalf("no job connected to the hanging host; output:\n%s", out.String())
	}
}

// cronInventory writes an inventory with an unreachable host "dead", a host "hang" that never finishes the
// SSH handshake, and one `@every 1s` check schedule of the given name on the given host.
func cronInventory(t *testing.T, path string, hangPort int, connectTimeout, name, host string) {
	t.Helper()
	dir := filepath.Dir(path)
	kh := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(kh, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf(`[defaults]
user = "deploy"
known_hosts = %q
identity_files = []
connect_timeout = %q

[hosts.dead]
address = "127.0.0.1"
port = 1

[hosts.hang]
address = "127.0.0.1"
port = %d

[[schedules]]
name = %q
cron = "@every 1s"
job = "check"
hosts = [%q]
`, kh, connectTimeout, hangPort, name, host)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// runCronApp runs the CLI in-process like run does, with a cron command that takes its reload signal from
// reload and stops when ctx ends, instead of listening to the process's signals.
func runCronApp(ctx context.Context, args []string, reload <-chan os.Signal, stdout, stderr io.Writer) int {
	app := newApp(strings.NewReader(""), stdout, stderr)
	for i, cmd := range app.Commands {
		if cmd.Name == "cron" {
			app.Commands[i] = newCronCommand(func(ctx context.Context) (context.Context, <-chan os.Signal, func()) {
				return ctx, reload, func() {}
			})
		}
	}
	args, err := permuteArgs(app, args)
	if err == nil {
		err = app.RunContext(ctx, args)
	}
	if err != nil {
		fmt.Fprintf(stderr, "skiff: %v\n", err)
	}
	return exitCode(err)
}

// The cron tests do not run in parallel: urfave/cli, which every run of the CLI goes through, keeps
// state in package variables.

func TestCron_RunsReloadsAndStopsGracefully(t *testing.T) {
	hang := newHangingHost(t)
	file := filepath.Join(t.TempDir(), "hosts.toml")
	cronInventory(t, file, hang.port, "2s", "probe", "dead")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reload := make(chan os.Signal, 1)
	var stdout, stderr cronOutput
	code := make(chan int, 1)
	go func() {
		code <- runCronApp(ctx, []string{"skiff", "-i", file, "cron", "--stop-timeout", "30s"}, reload, &stdout, &stderr)
	}()

	// An unreachable host: the run is logged as an error with check's exit code and the host's error.
	stdout.waitFor(t, `schedule=probe job=check result=error`)
	out := stdout.waitFor(t, `error="exit 4: dead: `)
	if !strings.Contains(out, "connection refused") {
		t.Errorf("the error line does not say why:\n%s", out)
	}

	// SIGHUP with a new file: the new schedule replaces the old one.
	cronInventory(t, file, hang.port, "2s", "hung", "hang")
	reload <- nil
	stdout.waitFor(t, "cron: reloaded 1 schedule(s)")
	hang.waitAccept(t, &stdout)

	// SIGHUP with a broken file: logged, and the schedule of the last good file keeps firing. Its runs read
	// the file as the same command typed by hand would, so they fail with the inventory error until the file
	// is fixed; fixing it is enough, without another SIGHUP.
	if err := os.WriteFile(file, []byte("[[schedules]]\nname = \"x\"\ncron = \"CRON_TZ=UTC\"\njob = \"check\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reload <- nil
	out = stdout.waitFor(t, "cron: reload failed, keeping the previous schedules")
	if !strings.Contains(out, "schedules[0].cron") {
		t.Errorf("the failed reload does not say what is wrong:\n%s", out)
	}
	stdout.waitFor(t, `error="exit 2: `+file)
	cronInventory(t, file, hang.port, "2s", "hung", "hang")
	for len(hang.accepted) > 0 {
		<-hang.accepted
	}
	hang.waitAccept(t, &stdout)

	// SIGTERM while that run is in its handshake: no new runs, the running one finishes and is logged,
	// then cron exits 0.
	cancel()
	if c := <-code; c != exitOK {
		t.Fatalf("exit code %d, want 0\nstdout:\n%s\nstderr:\n%s", c, stdout.String(), stderr.String())
	}
	out = stdout.String()
	stopping := strings.Index(out, "cron: stopping: no new runs; waiting up to 30s for 1 running job(s)")
	lastRun := strings.LastIndex(out, "schedule=hung job=check result=error")
	stopped := strings.LastIndex(out, "cron: stopped")
	if stopping < 0 || lastRun < stopping || stopped < lastRun {
		t.Errorf("want the running job logged between stopping and stopped:\n%s", out)
	}
	if strings.LastIndex(out, "schedule=probe") > strings.Index(out, "schedule=hung") {
		t.Errorf("the replaced schedule ran after the reload:\n%s", out)
	}
}

func TestCron_StopTimeoutCancelsRunningJob(t *testing.T) {
	hang := newHangingHost(t)
	file := filepath.Join(t.TempDir(), "hosts.toml")
	cronInventory(t, file, hang.port, "60s", "hung", "hang")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr cronOutput
	code := make(chan int, 1)
	go func() {
		code <- runCronApp(ctx, []string{"skiff", "-i", file, "--json", "cron", "--stop-timeout", "50ms"}, nil, &stdout, &stderr)
	}()
	hang.waitAccept(t, &stdout)
	cancel()
	if c := <-code; c != exitFailed {
		t.Fatalf("exit code %d, want 1\nstdout:\n%s\nstderr:\n%s", c, stdout.String(), stderr.String())
	}

	var run, stop map[string]any
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not a JSON line: %q", line)
		}
		if rec["schedule"] == "hung" {
			run = rec
		}
		if rec["event"] == "stop" && rec["message"] == "stopped" {
			stop = rec
		}
	}
	if run == nil || run["result"] != "error" {
		t.Errorf("the cancelled run was not logged as an error: %v\n%s", run, stdout.String())
	}
	if stop == nil || !strings.Contains(fmt.Sprint(stop["error"]), "hung still running at the deadline") {
		t.Errorf("the stop line does not name the cancelled schedule: %v", stop)
	}
}

// cronTimePattern matches a time as `skiff cron --list` prints it.
const cronTimePattern = `\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)`

func TestCron_SchedulesTakeTurns(t *testing.T) {
	hang := newHangingHost(t)
	file := filepath.Join(t.TempDir(), "hosts.toml")
	cronInventory(t, file, hang.port, "5s", "first", "hang")
	f, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("\n[[schedules]]\nname = \"second\"\ncron = \"@every 1s\"\njob = \"check\"\nhosts = [\"hang\"]\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr cronOutput
	code := make(chan int, 1)
	go func() {
		code <- runCronApp(ctx, []string{"skiff", "-i", file, "cron"}, nil, &stdout, &stderr)
	}()
	// One job connects and hangs in its handshake (up to 5s); the other schedule fires on the same tick or,
	// on a loaded machine, on the next one a second later, waits for its turn, and gives it up when cron
	// stops.
	hang.waitAccept(t, &stdout)
	time.Sleep(1500 * time.Millisecond)
	cancel()
	if c := <-code; c != exitOK {
		t.Fatalf("exit code %d, want 0\nstdout:\n%s\nstderr:\n%s", c, stdout.String(), stderr.String())
	}
	out := stdout.String()
	if !strings.Contains(out, `result=error`) || !strings.Contains(out, `result=skipped duration=`) ||
		!strings.Contains(out, `error="skipped: cron stopped before another job finished"`) {
		t.Errorf("want one run and one given-up turn:\n%s", out)
	}
}

func TestCron_List(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "hosts.toml")
	cronInventory(t, good, 2, "2s", "probe", "dead")
	never := filepath.Join(dir, "never.toml")
	if err := os.WriteFile(never, []byte("[hosts.a]\naddress = \"127.0.0.1\"\n\n[[schedules]]\nname = \"leap\"\ncron = \"0 0 30 2 *\"\njob = \"check\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(dir, "broken.toml")
	if err := os.WriteFile(broken, []byte("[[schedules]]\nname = \"x\"\ncron = \"CRON_TZ=UTC\"\njob = \"check\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     []string
	}{
		{"text", []string{"-i", good, "cron", "--list"}, exitOK, []string{`SCHEDULE +JOB +NEXT RUN +CRON\n`, `probe +check +` + cronTimePattern + ` +@every 1s\n`}},
		{"json", []string{"-i", good, "--json", "cron", "--list"}, exitOK, []string{`"name": "probe"`, `"cron": "@every 1s"`, `"next": "` + cronTimePattern + `"`}},
		{"never", []string{"-i", never, "cron", "--list"}, exitOK, []string{`leap +check +never +0 0 30 2 \*`}},
		{"broken inventory", []string{"-i", broken, "cron", "--list"}, exitUsage, nil},
		{"extra argument", []string{"-i", good, "cron", "now"}, exitUsage, nil},
		{"negative stop timeout", []string{"-i", good, "cron", "--stop-timeout=-1s"}, exitUsage, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append([]string{"skiff"}, tc.args...), strings.NewReader(""), &stdout, &stderr)
			if code != tc.wantCode {
				t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.wantCode, stdout.String(), stderr.String())
			}
			for _, w := range tc.want {
				if !regexp.MustCompile(w).MatchString(stdout.String()) {
					t.Errorf("output lacks %q:\n%s", w, stdout.String())
				}
			}
		})
	}
}

func TestScheduleArgs_BuildsTheUsersCommand(t *testing.T) {
	inv := &inventory.Inventory{Apps: map[string]*inventory.App{"api": {Name: "api", Hosts: []string{"web", "db1"}}}}
	base := cronJobOptions{inventory: "hosts.toml"}
	tests := []struct {
		name string
		opts cronJobOptions
		s    inventory.Schedule
		want []string
	}{
		{"prune everywhere", base, inventory.Schedule{Job: "prune"},
			[]string{"skiff", "--inventory", "hosts.toml", "--hosts=", "--json", "--schedule=", "prune"}},
		{"prune one app on some hosts", base, inventory.Schedule{Job: "prune", App: "api", Hosts: []string{"web1", "web2"}},
			[]string{"skiff", "--inventory", "hosts.toml", "--hosts=web1,web2", "--json", "--schedule=", "prune", "api"}},
		{"check an app's hosts", base, inventory.Schedule{Job: "check", App: "api"},
			[]string{"skiff", "--inventory", "hosts.toml", "--hosts=web,db1", "--json", "--schedule=", "check"}},
		{"deploy a tag", base, inventory.Schedule{Job: "deploy", App: "api", Tag: "nightly"},
			[]string{"skiff", "--inventory", "hosts.toml", "--hosts=", "--json", "--schedule=", "deploy", "api", "--tag", "nightly"}},
		{"exec", base, inventory.Schedule{Job: "exec", Hosts: []string{"all"}, Command: []string{"df", "-h", "--", "/"}},
			[]string{"skiff", "--inventory", "hosts.toml", "--hosts=all", "--json", "--schedule=", "exec", "--", "df", "-h", "--", "/"}},
		{"global options are inherited",
			cronJobOptions{inventory: "/etc/skiff/hosts.toml", parallel: 4, maxHandshakes: 2, dryRun: true, verbose: true, acceptNew: true},
			inventory.Schedule{Job: "check"},
			[]string{"skiff", "--inventory", "/etc/skiff/hosts.toml", "--hosts=", "--json", "--schedule=", "--parallel", "4", "--max-handshakes", "2",
				"--dry-run", "--verbose", "--accept-new-host-keys", "check"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := scheduleArgs(tc.opts, inv, &tc.s)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("args\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestFailureSummary_NamesFailedHosts(t *testing.T) {
	tests := []struct {
		name   string
		report string
		stderr string
		want   string
	}{
		{"failed hosts of the report", `{"hosts":[{"host":"a","ok":true},{"host":"b","ok":false,"error":"refused\n  twice"}]}`, "", "b: refused twice"},
		{"stderr without report", "", "skiff: prune: not implemented yet\n", "prune: not implemented yet"},
		{"nothing", "", "", "no output"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := failureSummary([]byte(tc.report), tc.stderr); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
