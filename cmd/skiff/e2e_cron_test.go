package main

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/internal/testenv"
)

// TestCron_SchedulesRunConcurrently: a deploy whose hook sleeps for 3 s does not hold up another schedule,
// which keeps running every second while the deploy is busy.
func TestCron_SchedulesRunConcurrently(t *testing.T) {
	a := newE2EApp(t, "cronslow", appOptions{supervisor: supervisorNone, extra: `source = ` + testenv.TOMLString(e2eAppTree(t, "1", nil)) + `
hooks.before_switch = ["sleep 3"]`})
	f, err := os.OpenFile(a.inv, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`
[[schedules]]
name = "slow"
cron = "@every 1s"
job = "deploy"
app = "cronslow"

[[schedules]]
name = "fast"
cron = "@every 1s"
job = "exec"
hosts = ["h1"]
command = ["true"]
`); err != nil {
		t.Fatal(err)
	}
	f.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr cronOutput
	code := make(chan int, 1)
	go func() {
		code <- runCronApp(ctx, []string{"skiff", "-i", a.inv, "--json", "cron", "--stop-timeout", "30s"}, nil, &stdout, &stderr)
	}()
	stdout.waitFor(t, `"schedule":"slow","job":"deploy","result":"ok"`)
	cancel()
	if c := <-code; c != exitOK {
		t.Fatalf("exit code %d, want 0\nstdout:\n%s\nstderr:\n%s", c, stdout.String(), stderr.String())
	}

	type run struct {
		Time       time.Time `json:"time"`
		Schedule   string    `json:"schedule"`
		Result     string    `json:"result"`
		DurationMS int64     `json:"duration_ms"`
	}
	var slow *run
	var fast []run
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var r run
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("not a JSON line: %q", line)
		}
		switch {
		case r.Schedule == "slow" && r.Result == "ok" && slow == nil:
			slow = &r
		case r.Schedule == "fast" && r.Result == "ok":
			fast = append(fast, r)
		}
	}
	if slow == nil || slow.DurationMS < 3000 {
		t.Fatalf("the slow deploy did not run for its 3 s hook: %+v\n%s", slow, stdout.String())
	}
	// The log dates a run by its start, to the second: count the fast runs that started strictly inside
	// the deploy's run.
	end := slow.Time.Add(time.Duration(slow.DurationMS) * time.Millisecond)
	during := 0
	for _, r := range fast {
		if r.Time.After(slow.Time) && r.Time.Add(time.Second).Before(end) {
			during++
		}
	}
	if during < 2 {
		t.Errorf("the fast schedule ran %d time(s) while the deploy was busy, want at least 2:\n%s", during, stdout.String())
	}
}
