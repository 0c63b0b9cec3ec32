package notify

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/skiffdeploy/skiff/inventory"
)

func TestEvent_Tags(t *testing.T) {
	tests := []struct {
		name string
		ev   Event
		want []string
	}{
		{"ok deploy", Event{Event: "deploy", OK: true}, []string{"deploy"}},
		{"failed deploy rolled back", Event{Event: "deploy", RolledBack: true}, []string{"deploy", "rollback", "failure"}},
		{"rollback command", Event{Event: "rollback", OK: true, RolledBack: true}, []string{"rollback"}},
		{"prune from cron", Event{Event: "prune", OK: true, Schedule: "nightly"}, []string{"prune", "cron"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.ev.Tags(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Tags() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestEvent_ScrubRemovesSecrets(t *testing.T) {
	ev := Event{Operator: "ci", Hosts: []HostResult{{Host: "h1", Error: "login with hunter22 failed"}}}
	ev.Scrub([]string{"hunter22", "ab"})
	if ev.Hosts[0].Error != "login with [redacted] failed" {
		t.Errorf("error = %q", ev.Hosts[0].Error)
	}
}

func TestSign_IsHMACSHA256(t *testing.T) {
	// printf '{"a":1}' | openssl dgst -sha256 -hmac key
	if got, want := Sign("key", []byte(`{"a":1}`)), "sha256=88a67f24bbcdaed0e6c997404bb79a743baf44c6bab2f4c27328e3009d22e342"; got != want {
		t.Errorf("Sign = %q, want %q", got, want)
	}
	if Sign("key", []byte("a")) == Sign("other", []byte("a")) {
		t.Error("the signature does not depend on the secret")
	}
}

func TestSender_CommandGetsEventOnStdinAndFailuresAreNamed(t *testing.T) {
	out := filepath.Join(t.TempDir(), "event.json")
	s := &Sender{Getenv: func(string) string { return "" }, Notifiers: []*inventory.Notify{
		{Command: []string{"sh", "-c", `cat > "$0"`, out}, On: []string{"deploy"}},
		{Command: []string{"sh", "-c", "echo nope >&2; exit 3"}, On: []string{"failure"}},
		{URL: "http://127.0.0.1:1/x", SecretEnv: "UNSET", On: []string{"failure"}},
		{Command: []string{"false"}, On: []string{"prune"}},
	}}
	errs := s.Send(context.Background(), &Event{Event: "deploy", Command: "deploy", App: "api"})
	data, err := os.ReadFile(out)
	if err != nil || !strings.Contains(string(data), `"app":"api"`) {
		t.Errorf("the command got %q, %v", data, err)
	}
	if len(errs) != 2 || !strings.Contains(errs[0].Error(), "notify[1]: sh: exit status 3: nope") ||
		!strings.Contains(errs[1].Error(), "notify[2]: secret_env UNSET is not set") {
		t.Errorf("errors = %v", errs)
	}
}

func TestSlackText(t *testing.T) {
	got := SlackText(&Event{Command: "deploy", App: "api", RolledBack: true, Operator: "ci",
		Hosts: []HostResult{{Host: "web1", OK: true}, {Host: "web2", Error: "check: port 8088\nlast lines"}}})
	want := "skiff deploy api: FAILED (rolled back) on 2 host(s) by ci\n• web2: check: port 8088"
	if got != want {
		t.Errorf("SlackText = %q, want %q", got, want)
	}
}

func TestSender_SlackAndSignedURL(t *testing.T) {
	got := make(chan *http.Request, 2)
	bodies := make(chan string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- r
		bodies <- string(b)
	}))
	defer srv.Close()
	env := map[string]string{"HOOK": srv.URL + "/slack/T000/secret-path", "KEY": "k3y"}
	s := &Sender{Getenv: func(k string) string { return env[k] }, Notifiers: []*inventory.Notify{
		{SlackWebhookEnv: "HOOK", On: []string{"failure"}},
		{URL: srv.URL + "/signed", SecretEnv: "KEY", On: []string{"deploy"}},
	}}
	if errs := s.Send(context.Background(), &Event{Event: "deploy", Command: "deploy", App: "api", Hosts: []HostResult{{Host: "h1", Error: "boom"}}}); len(errs) != 0 {
		t.Fatal(errs)
	}
	for i := 0; i < 2; i++ {
		r, body := <-got, <-bodies
		switch r.URL.Path {
		case "/slack/T000/secret-path":
			if !strings.Contains(body, `"text":"skiff deploy api: FAILED on 1 host(s)\n• h1: boom"`) {
				t.Errorf("slack body %s", body)
			}
		case "/signed":
			if r.Header.Get(SignatureHeader) != Sign("k3y", []byte(body)) {
				t.Errorf("signature %q does not match the body", r.Header.Get(SignatureHeader))
			}
		default:
			t.Errorf("unexpected POST %s", r.URL.Path)
		}
	}
	// A failing Slack hook names the variable, never the URL (a secret).
	srv.Close()
	errs := s.Send(context.Background(), &Event{Event: "deploy"})
	if len(errs) != 2 {
		t.Errorf("errors = %v, want both notifiers failing", errs)
	}
	for _, err := range errs {
		if strings.Contains(err.Error(), "secret-path") {
			t.Errorf("the webhook URL is in an error: %v", err)
		}
	}
}
