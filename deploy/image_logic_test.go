package deploy

import (
	"strings"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/compose"
	"github.com/skiffdeploy/skiff/release"
)

func digestOf(c byte) string { return "sha256:" + strings.Repeat(string(c), 64) }

func ctr(id byte, status, health string, started int) compose.Container {
	return compose.Container{ID: strings.Repeat(string(id), 64), Name: "shop_app_1", Image: "r.example.com/app@" + digestOf('1'),
		Status: status, Health: health, StartedAt: time.Unix(int64(started), 0)}
}

func TestAssessContainers(t *testing.T) {
	pinned := "r.example.com/app@" + digestOf('1')
	exited := ctr('a', "exited", "", 1)
	exited.ExitCode = 3
	other := ctr('a', "running", "", 1)
	other.Image = "r.example.com/app:v1"
	for _, tc := range []struct {
		name   string
		ctrs   []compose.Container
		ready  bool
		reason string
		fatal  string
	}{
		{name: "running without healthcheck", ctrs: []compose.Container{ctr('a', "running", "", 1)}, ready: true},
		{name: "healthy", ctrs: []compose.Container{ctr('a', "running", "healthy", 1)}, ready: true},
		{name: "health starting", ctrs: []compose.Container{ctr('a', "running", "starting", 1)}, reason: "health starting"},
		{name: "restarting", ctrs: []compose.Container{ctr('a', "restarting", "", 1)}, reason: "is restarting"},
		{name: "created", ctrs: []compose.Container{ctr('a', "created", "", 1)}, reason: "is created"},
		{name: "unhealthy", ctrs: []compose.Container{ctr('a', "running", "unhealthy", 1)}, fatal: "is unhealthy"},
		{name: "exited", ctrs: []compose.Container{exited}, fatal: "exited with code 3"},
		{name: "second one not ready", ctrs: []compose.Container{ctr('a', "running", "", 1), ctr('b', "running", "starting", 1)}, reason: "bbbbbbbbbbbb"},
		{name: "not the pinned image", ctrs: []compose.Container{other}, fatal: "not the pinned"},
		{name: "no container", fatal: "has no container"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ready, reason, fatal := assessContainers(tc.ctrs, pinned, "app")
			if ready != tc.ready {
				t.Fatalf("ready %v, want %v", ready, tc.ready)
			}
			if tc.fatal != "" {
				if fatal == nil || !strings.Contains(fatal.Error(), tc.fatal) {
					t.Fatalf("fatal %v, want %q", fatal, tc.fatal)
				}
				return
			}
			if fatal != nil || !strings.Contains(reason, tc.reason) {
				t.Fatalf("reason %q, fatal %v; want reason containing %q", reason, fatal, tc.reason)
			}
		})
	}
}

func TestSameContainers(t *testing.T) {
	before := []compose.Container{ctr('a', "running", "", 1)}
	restarted := ctr('a', "running", "", 2)
	stopped := ctr('a', "exited", "", 1)
	unhealthy := ctr('a', "running", "unhealthy", 1)
	for _, tc := range []struct {
		name string
		now  []compose.Container
		err  string
	}{
		{name: "unchanged", now: before},
		{name: "gone", now: nil, err: "disappeared"},
		{name: "stopped", now: []compose.Container{stopped}, err: "stopped during the checks"},
		{name: "restarted", now: []compose.Container{restarted}, err: "restarted during the checks"},
		{name: "turned unhealthy", now: []compose.Container{unhealthy}, err: "turned unhealthy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := sameContainers(before, tc.now)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("err %v, want %q", err, tc.err)
			}
		})
	}
}

// imageHistory is deploy v1 (A), deploy v2 (B), failed deploy v3 (C) rolled back to B.
func imageHistory() []release.HistoryEntry {
	const img = "r.example.com/app"
	return []release.HistoryEntry{
		{Op: "deploy", ID: "20261122T100000Z-111111111111", Result: release.ResultOK, Image: img, Tag: "latest", Digest: digestOf('1')},
		{Op: "deploy", ID: "20261122T110000Z-222222222222", Previous: "20261122T100000Z-111111111111", Result: release.ResultOK, Image: img, Tag: "v2", Digest: digestOf('2')},
		{Op: "deploy", ID: "20261122T120000Z-333333333333", Previous: "20261122T110000Z-222222222222", Result: release.ResultFailed, Image: img, Tag: "v3", Digest: digestOf('3')},
		{Op: "rollback", ID: "20261122T110000Z-222222222222", Previous: "20261122T120000Z-333333333333", Result: release.ResultOK, Image: img, Tag: "v2", Digest: digestOf('2')},
	}
}

func TestLiveImage(t *testing.T) {
	live, err := LiveImage(imageHistory())
	if err != nil || live == nil || live.Digest != digestOf('2') || live.Tag != "v2" {
		t.Fatalf("LiveImage = %+v, %v", live, err)
	}
	if live, err := LiveImage(imageHistory()[2:3]); err != nil || live != nil {
		t.Fatalf("only a failed deploy: %+v, %v", live, err)
	}
	tampered := imageHistory()
	tampered[3].Image = "r.example.com/app;reboot"
	if _, err := LiveImage(tampered); err == nil {
		t.Fatal("LiveImage accepted a tampered image name")
	}
}

func TestImageRollbackTarget(t *testing.T) {
	hist := imageHistory()
	cur := "20261122T110000Z-222222222222"
	for _, tc := range []struct {
		name, to string
		force    bool
		want     string // digest
		err      string
	}{
		{name: "previous skips the failed one", want: digestOf('1')},
		{name: "by id", to: "20261122T100000Z-111111111111", want: digestOf('1')},
		{name: "by digest", to: digestOf('1'), want: digestOf('1')},
		{name: "by digest prefix", to: "sha256:1111111", want: digestOf('1')},
		{name: "failed refused", to: "20261122T120000Z-333333333333", err: "marked failed"},
		{name: "failed forced", to: digestOf('3'), force: true, want: digestOf('3')},
		{name: "current", to: cur, err: "already current"},
		{name: "unknown id", to: "20261122T130000Z", err: "not in the app's history"},
		{name: "unknown digest", to: digestOf('9'), err: "no release of digest"},
		{name: "short prefix", to: "sha256:11", err: "at least 7"},
		{name: "garbage", to: "$(reboot)", err: "neither a release id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rel, err := ImageRollbackTarget(hist, cur, tc.to, tc.force)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || rel.Digest != tc.want || rel.Image != "r.example.com/app" {
				t.Fatalf("target %+v, %v; want digest %s", rel, err, tc.want)
			}
		})
	}
}
