package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDeploy_FailureCarriesAppLogTail(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		app    string
		server string
		want   []string // in the log tail, in this order
	}{
		{
			name:   "crash with a traceback",
			app:    "diagcrash",
			server: "import sys\nprint('starting up', flush=True)\ndef connect():\n    raise RuntimeError('database unreachable: planted')\nconnect()\n",
			want:   []string{"Traceback (most recent call last):", "RuntimeError: database unreachable: planted"},
		},
		{
			name:   "port never opens",
			app:    "diagdeaf",
			server: "import sys, time\nfor i in range(30):\n    print('waiting for config line', i, file=sys.stderr, flush=True)\nprint('\\x1b[31mno listener\\x1b[0m', file=sys.stderr, flush=True)\ntime.sleep(600)\n",
			want:   []string{"waiting for config line 29", "no listener"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := newE2EApp(t, tc.app, appOptions{checkTimeout: "3s"})
			a.deploy(0, e2eAppTree(t, "good", nil))
			broken := e2eAppTree(t, "broken", func(dir string) { e2eWrite(t, filepath.Join(dir, "server.py"), tc.server) })
			time.Sleep(time.Second)

			r := a.mustSkiff(exitFailed, "--json", "deploy", a.name, "--source", broken)
			var rep report
			if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || len(rep.Hosts) != 1 || rep.Hosts[0].Outcome == nil {
				t.Fatalf("not one JSON report: %v\n%s", err, r)
			}
			tail := rep.Hosts[0].LogTail
			if len(tail) == 0 || len(tail) > 20 {
				t.Fatalf("log_tail has %d lines, want 1..20: %q", len(tail), tail)
			}
			joined := strings.Join(tail, "\n")
			at := 0
			for _, w := range tc.want {
				i := strings.Index(joined[at:], w)
				if i < 0 {
					t.Fatalf("log_tail lacks %q (in order):\n%s", w, joined)
				}
				at += i
			}
			if strings.ContainsAny(joined, "\x1b\r") {
				t.Errorf("log_tail holds control characters: %q", joined)
			}
			if strings.Contains(rep.Hosts[0].Error, "\n") && strings.Contains(rep.Hosts[0].Error, tc.want[len(tc.want)-1]) {
				t.Errorf("the log lines are in the error text as well: %q", rep.Hosts[0].Error)
			}

			time.Sleep(time.Second)
			text := a.mustSkiff(exitFailed, "deploy", a.name, "--source", broken)
			if !strings.Contains(text.stdout, "line(s) of the app's log:") {
				t.Errorf("text output has no log tail:\n%s", text)
			}
			for _, w := range tc.want {
				if !strings.Contains(text.stdout, w) {
					t.Errorf("text output lacks the log line %q:\n%s", w, text)
				}
			}
		})
	}
}
