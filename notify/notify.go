// Package notify tells people about finished skiff runs: [[notify]] entries of the inventory get one JSON
// event per deploy, rollback, prune or cron job, on a command's stdin, as a signed POST, or as a Slack
// message. Notifying is best effort: a notifier that fails or hangs is reported as a warning and never
// changes the run's result or delays it by more than Timeout.
package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/skiffdeploy/skiff/inventory"
)

// Timeout bounds one notifier: its command's run or its HTTP request.
const Timeout = 10 * time.Second

// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the body, keyed with the secret named by
// secret_env, so that a receiver can tell skiff's events from anyone else's.
const SignatureHeader = "X-Skiff-Signature"

// Event is what a notifier receives: one finished command and its result per host. It holds no secret: Scrub
// removes the values of every secret the inventory names from its texts.
type Event struct {
	// Event is the kind: deploy, rollback, prune (cron jobs keep their command's kind and set Schedule).
	Event    string `json:"event"`
	Command  string `json:"command"`
	App      string `json:"app,omitempty"`
	Schedule string `json:"schedule,omitempty"` // the [[schedules]] entry that ran it, under `skiff cron`
	OK       bool   `json:"ok"`
	// RolledBack is true when any host went back to its previous release or image.
	RolledBack bool         `json:"rolled_back"`
	DryRun     bool         `json:"dry_run,omitempty"`
	Operator   string       `json:"operator,omitempty"`
	Origin     string       `json:"origin,omitempty"`
	Time       time.Time    `json:"time"`
	DurationMS int64        `json:"duration_ms"`
	Hosts      []HostResult `json:"hosts"`
}

// HostResult is one host's part of an Event.
type HostResult struct {
	Host          string `json:"host"`
	OK            bool   `json:"ok"`
	Error         string `json:"error,omitempty"`
	ReleaseBefore string `json:"release_before,omitempty"`
	ReleaseAfter  string `json:"release_after,omitempty"`
	RolledBack    bool   `json:"rolled_back,omitempty"`
	// LogTail are the app's last log lines when its start or check failed.
	LogTail []string `json:"log_tail,omitempty"`
}

// Tags are the `on` values the event matches: its kind, "rollback" when a host rolled back, "failure" when
// it failed, and "cron" when a schedule ran it.
func (e *Event) Tags() []string {
	tags := []string{e.Event}
	if e.RolledBack && e.Event != "rollback" {
		tags = append(tags, "rollback")
	}
	if !e.OK {
		tags = append(tags, "failure")
	}
	if e.Schedule != "" {
		tags = append(tags, "cron")
	}
	return tags
}

// Scrub replaces every occurrence of a secret value in the event's texts with "[redacted]". Empty and very
// short values are left alone: they would redact ordinary words.
func (e *Event) Scrub(secrets []string) {
	scrub := func(s string) string {
		for _, v := range secrets {
			if len(v) >= 4 {
				s = strings.ReplaceAll(s, v, "[redacted]")
			}
		}
		return s
	}
	e.Operator, e.Origin = scrub(e.Operator), scrub(e.Origin)
	for i := range e.Hosts {
		e.Hosts[i].Error = scrub(e.Hosts[i].Error)
		for j, l := range e.Hosts[i].LogTail {
			e.Hosts[i].LogTail[j] = scrub(l)
		}
	}
}

// Secrets returns the values of every environment variable the inventory names as holding a secret, for Scrub.
func Secrets(inv *inventory.Inventory, getenv func(string) string) []string {
	var names []string
	for _, r := range inv.Registries {
		names = append(names, r.PasswordEnv)
	}
	for _, a := range inv.Apps {
		names = append(names, a.Supervisor.PasswordEnv)
		if a.Env != nil {
			names = append(names, a.Env.SecretEnv...)
		}
	}
	for _, n := range inv.Notify {
		names = append(names, n.SecretEnv, n.SlackWebhookEnv)
	}
	var values []string
	for _, n := range names {
		if v := getenv(n); n != "" && v != "" {
			values = append(values, v)
		}
	}
	return values
}

// Sender delivers events to the inventory's notifiers.
type Sender struct {
	Notifiers []*inventory.Notify
	// Getenv looks up secret_env and slack_webhook_env.
	Getenv func(string) string
	// Client sends the POSTs; nil means a client of its own.
	Client *http.Client
}

// Send delivers ev to every notifier whose `on` matches it, all at once, each within Timeout, and returns one
// error per notifier that failed, naming it (notify[i]).
func (s *Sender) Send(ctx context.Context, ev *Event) []error {
	body, err := json.Marshal(ev)
	if err != nil {
		return []error{fmt.Errorf("notify: %w", err)}
	}
	tags := ev.Tags()
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for i, n := range s.Notifiers {
		if !slices.ContainsFunc(tags, func(t string) bool { return slices.Contains(n.On, t) }) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), Timeout)
			defer cancel()
			if err := s.one(ctx, n, ev, body); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("notify[%d]: %w", i, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errs
}

func (s *Sender) one(ctx context.Context, n *inventory.Notify, ev *Event, body []byte) error {
	switch {
	case len(n.Command) > 0:
		return runCommand(ctx, n.Command, body)
	case n.URL != "":
		var secret string
		if n.SecretEnv != "" {
			if secret = s.Getenv(n.SecretEnv); secret == "" {
				return fmt.Errorf("secret_env %s is not set in the environment", n.SecretEnv)
			}
		}
		return s.post(ctx, n.URL, body, secret)
	default:
		url := s.Getenv(n.SlackWebhookEnv)
		if url == "" {
			return fmt.Errorf("slack_webhook_env %s is not set in the environment", n.SlackWebhookEnv)
		}
		msg, _ := json.Marshal(map[string]string{"text": SlackText(ev)})
		// The webhook URL is itself the secret: errors name the variable, never the URL.
		if err := s.post(ctx, url, msg, ""); err != nil {
			return fmt.Errorf("slack webhook (%s): %s", n.SlackWebhookEnv, strings.ReplaceAll(err.Error(), url, "$"+n.SlackWebhookEnv))
		}
		return nil
	}
}

// Sign returns the X-Skiff-Signature value of body.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func (s *Sender) post(ctx context.Context, url string, body []byte, secret string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "skiff-notify")
	if secret != "" {
		req.Header.Set(SignatureHeader, Sign(secret, body))
	}
	client := s.Client
	if client == nil {
		client = &http.Client{Timeout: Timeout}
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("POST %s: %s", req.URL.Redacted(), resp.Status)
	}
	return nil
}

// runCommand runs argv locally with body on its stdin. A command that outlives ctx is killed, and its
// output pipes are abandoned a moment later even if a child of it still holds them.
func runCommand(ctx context.Context, argv []string, body []byte) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin = bytes.NewReader(body)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &limited{w: &out, n: 4096}, &limited{w: &out, n: 4096}
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		return fmt.Errorf("%s: no result within %s", argv[0], Timeout)
	}
	if err != nil {
		if msg := strings.TrimSpace(out.String()); msg != "" {
			return fmt.Errorf("%s: %w: %s", argv[0], err, msg)
		}
		return fmt.Errorf("%s: %w", argv[0], err)
	}
	return nil
}

// limited keeps the first n bytes written to it and discards the rest.
type limited struct {
	w io.Writer
	n int
}

func (l *limited) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		l.n -= k
		_, _ = l.w.Write(p[:k])
	}
	return len(p), nil
}

// SlackText renders ev as the text of a Slack message.
func SlackText(ev *Event) string {
	var b strings.Builder
	result := "ok"
	switch {
	case !ev.OK && ev.RolledBack:
		result = "FAILED (rolled back)"
	case !ev.OK:
		result = "FAILED"
	}
	fmt.Fprintf(&b, "skiff %s", ev.Command)
	if ev.App != "" {
		fmt.Fprintf(&b, " %s", ev.App)
	}
	fmt.Fprintf(&b, ": %s on %d host(s)", result, len(ev.Hosts))
	if ev.Schedule != "" {
		fmt.Fprintf(&b, " (schedule %s)", ev.Schedule)
	}
	if ev.Operator != "" {
		fmt.Fprintf(&b, " by %s", ev.Operator)
	}
	for _, h := range ev.Hosts {
		if h.OK {
			continue
		}
		line := h.Error
		if i := strings.IndexByte(line, '\n'); i >= 0 {
			line = line[:i]
		}
		fmt.Fprintf(&b, "\n• %s: %s", h.Host, line)
	}
	return b.String()
}
