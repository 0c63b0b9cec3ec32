package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/notify"
)

// notifyReceiver is an HTTP server of the test's own that records every event POSTed to it.
type notifyReceiver struct {
	url    string
	events chan receivedEvent
}

type receivedEvent struct {
	body      []byte
	signature string
	event     notify.Event
}

func newNotifyReceiver(t *testing.T) *notifyReceiver {
	t.Helper()
	r := &notifyReceiver{events: make(chan receivedEvent, 16)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		ev := receivedEvent{body: body, signature: req.Header.Get(notify.SignatureHeader)}
		if err := json.Unmarshal(body, &ev.event); err != nil {
			t.Errorf("notification is not a JSON event: %v\n%s", err, body)
		}
		r.events <- ev
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL + "/skiff"
	return r
}

// next waits for the next event that satisfies match.
func (r *notifyReceiver) next(t *testing.T, what string, match func(notify.Event) bool) receivedEvent {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case ev := <-r.events:
			if match(ev.event) {
				return ev
			}
		case <-deadline:
			t.Fatalf("no notification of %s arrived", what)
		}
	}
}

const (
	plantedNotifySecret = "notify-hmac-key-3f9a1c"
	plantedAppSecret    = "db-password-PLANTED-7e21"
)

func TestNotify_FailedDeployIsSignedAndHangingNotifierIsAWarning(t *testing.T) {
	// t.Setenv: not parallel with the other tests.
	t.Setenv("E2E_NOTIFY_SECRET", plantedNotifySecret)
	t.Setenv("E2E_NOTIFY_DB_PASSWORD", plantedAppSecret)
	recv := newNotifyReceiver(t)
	a := newE2EApp(t, "notified", appOptions{checkTimeout: "3s", extra: fmt.Sprintf(`
[apps.notified.env]
secret_env = ["E2E_NOTIFY_DB_PASSWORD"]

[[notify]]
url = %q
secret_env = "E2E_NOTIFY_SECRET"
on = ["failure", "rollback"]

[[notify]]
command = ["sleep", "60"]
on = ["failure"]
`, recv.url)})
	good := a.deploy(0, e2eAppTree(t, "good", nil))
	select {
	case ev := <-recv.events:
		t.Fatalf("a successful deploy was sent to a notifier that wants failures: %s", ev.body)
	default:
	}

	broken := e2eAppTree(t, "broken", func(dir string) {
		e2eWrite(t, filepath.Join(dir, "server.py"), "import sys\nsys.exit('broken on purpose')\n")
	})
	time.Sleep(time.Second) // release ids have a resolution of one second
	start := time.Now()
	r := a.skiff("--json", "deploy", a.name, "--source", broken)
	took := time.Since(start)
	if r.code != exitFailed {
		t.Fatalf("broken deploy: want exit 1 whatever the notifiers do, got %s", r)
	}
	if !strings.Contains(r.stderr, "warning: notify[1]: sleep: no result within 10s") {
		t.Errorf("the hanging notifier is not reported as a warning:\n%s", r)
	}
	// The deploy itself, restart and rollback take a few seconds; the notifier adds at most its 10 s.
	if took > 40*time.Second {
		t.Errorf("the deploy with a hanging notifier took %s", took)
	}
	var rep report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("stdout is not one JSON report (the notifier's warning must go to stderr): %v\n%s", err, r)
	}

	got := recv.next(t, "the failed deploy", func(e notify.Event) bool { return e.Command == "deploy" })
	if want := notify.Sign(plantedNotifySecret, got.body); got.signature != want {
		t.Errorf("signature %q, want %q", got.signature, want)
	}
	ev := got.event
	if ev.OK || !ev.RolledBack || ev.App != a.name || len(ev.Hosts) != 1 {
		t.Errorf("event = %+v, want a failed, rolled-back deploy of %s on one host", ev, a.name)
	}
	if h := ev.Hosts[0]; h.ReleaseBefore != good.After || h.ReleaseAfter != good.After || !h.RolledBack || !strings.Contains(h.Error, "did not start") {
		t.Errorf("host result = %+v, want rolled back to %s with the error", h, good.After)
	}
	for _, secret := range []string{plantedNotifySecret, plantedAppSecret} {
		if strings.Contains(string(got.body), secret) || strings.Contains(r.all(), secret) {
			t.Errorf("the planted secret %q is in the event or the output", secret)
		}
	}
}

func TestNotify_CronPrune(t *testing.T) {
	recv := newNotifyReceiver(t)
	a := newE2EApp(t, "cronnotified", appOptions{supervisor: supervisorNone, extra: fmt.Sprintf(`
[[schedules]]
name = "nightly-prune"
cron = "@every 1s"
job = "prune"
app = "cronnotified"

[[notify]]
url = %q
on = ["cron"]
`, recv.url)})
	a.deploy(0, e2eAppTree(t, "one", nil))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr cronOutput
	code := make(chan int, 1)
	go func() {
		code <- runCronApp(ctx, []string{"skiff", "-i", a.inv, "cron", "--stop-timeout", "30s"}, nil, &stdout, &stderr)
	}()
	got := recv.next(t, "the cron prune", func(e notify.Event) bool { return e.Command == "prune" })
	cancel()
	if c := <-code; c != exitOK {
		t.Errorf("cron exit %d\n%s\n%s", c, stdout.String(), stderr.String())
	}
	ev := got.event
	if !ev.OK || ev.Schedule != "nightly-prune" || ev.Event != "prune" || ev.App != a.name || len(ev.Hosts) != 1 || ev.Hosts[0].Host != "h1" {
		t.Errorf("event = %+v\n%s", ev, got.body)
	}
	if got.signature != "" {
		t.Errorf("an entry without secret_env is signed: %q", got.signature)
	}
}
