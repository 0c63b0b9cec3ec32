package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/deploy"
)

func TestProgressText(t *testing.T) {
	tests := []struct {
		name string
		p    deploy.Progress
		want string
	}{
		{"upload running", deploy.Progress{Step: "upload", Elapsed: 2 * time.Second, Bytes: 50 << 20, BytesTotal: 200 << 20, Files: 1, FilesTotal: 4},
			"upload  25%  50.0 MiB of 200.0 MiB, 1 of 4 file(s), 25.0 MiB/s, ETA 6s  2s"},
		{"upload done", deploy.Progress{Step: "upload", Done: true, Elapsed: 8 * time.Second, Bytes: 200 << 20, BytesTotal: 200 << 20, Files: 4, FilesTotal: 4},
			"upload 100%  200.0 MiB of 200.0 MiB, 4 of 4 file(s), 25.0 MiB/s  done in 8s"},
		{"wait", deploy.Progress{Step: "pull", Elapsed: 12400 * time.Millisecond}, "pull  12s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := progressText(tc.p); got != tc.want {
				t.Errorf("progressText = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPlainProgress_AtMostEveryTenthOrFiveSeconds(t *testing.T) {
	var out bytes.Buffer
	p := &printer{out: &out, progressTo: &out, width: 2}
	v := &plainProgress{p: p, hosts: map[string]*plainState{}}
	const total = 100 << 20
	v.event(deploy.Progress{Host: "h1", Step: "upload", BytesTotal: total})
	for i := int64(1); i <= 100; i++ {
		v.event(deploy.Progress{Host: "h1", Step: "upload", Elapsed: 2 * time.Second, Bytes: i * total / 100, BytesTotal: total})
	}
	v.event(deploy.Progress{Host: "h1", Step: "upload", Done: true, Elapsed: 2 * time.Second, Bytes: total, BytesTotal: total})
	// A short step without bytes says nothing.
	v.event(deploy.Progress{Host: "h1", Step: "check", Elapsed: 300 * time.Millisecond})
	v.event(deploy.Progress{Host: "h1", Step: "check", Done: true, Elapsed: 400 * time.Millisecond})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 11 || !strings.HasPrefix(lines[0], "h1 > upload  10%") || !strings.Contains(lines[10], "done in") {
		t.Errorf("%d lines, want one per tenth and the end:\n%s", len(lines), out.String())
	}
}

func TestLiveProgress_SumsUpHostsBeyondTheScreen(t *testing.T) {
	v := &liveProgress{maxBars: 2, hosts: map[string]*liveHost{}}
	for i, step := range []string{"upload", "upload", "check", "upload", "check"} {
		name := string(rune('a' + i))
		v.order = append(v.order, name)
		v.hosts[name] = &liveHost{text: progressText(deploy.Progress{Step: step})}
	}
	if got, want := v.restText(), "… 3 more host(s): 2 in check, 1 in upload"; got != want {
		t.Errorf("restText = %q, want %q", got, want)
	}
}
