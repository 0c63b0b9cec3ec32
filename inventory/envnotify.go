package inventory

import (
	"slices"
	"sort"
	"strings"
)

// EnvFile is an app's [apps.NAME.env] table: an environment file skiff writes to Path/shared/File on every
// host, mode 0600, only when its content changed. Secret values are never in the inventory: SecretEnv names
// variables of skiff's own environment whose values go into the file under the same name.
type EnvFile struct {
	// File is the file's path below shared/, ".env" unless set.
	File string `json:"file"`
	// Values are literal KEY = value pairs.
	Values map[string]string `json:"values,omitempty"`
	// SecretEnv are names of environment variables copied into the file; their values are secret.
	SecretEnv []string `json:"secret_env,omitempty"`
}

// Keys returns every key of the file, sorted.
func (e *EnvFile) Keys() []string {
	keys := make([]string, 0, len(e.Values)+len(e.SecretEnv))
	for k := range e.Values {
		keys = append(keys, k)
	}
	keys = append(keys, e.SecretEnv...)
	sort.Strings(keys)
	return keys
}

// Notify is one [[notify]] entry: where the JSON event of a finished command goes. Exactly one of Command, URL
// and SlackWebhookEnv is set.
type Notify struct {
	// Command is an argv run locally with the event on its stdin.
	Command []string `json:"command,omitempty"`
	// URL receives the event as a POST, signed with the secret in SecretEnv when that is set.
	URL       string `json:"url,omitempty"`
	SecretEnv string `json:"secret_env,omitempty"`
	// SlackWebhookEnv names the variable holding a Slack incoming-webhook URL (itself a secret).
	SlackWebhookEnv string `json:"slack_webhook_env,omitempty"`
	// On are the events to send: deploy, rollback, prune, cron, failure; all of them unless set.
	On []string `json:"on"`
}

// NotifyEvents are the values [[notify]] on accepts.
var NotifyEvents = []string{"deploy", "rollback", "prune", "cron", "failure"}

// env resolves an [apps.NAME.env] table; nil when the app has none.
func (b *builder) env(p keyPath, r rawEnv, defined bool) *EnvFile {
	if !defined {
		return nil
	}
	e := &EnvFile{File: ".env", Values: map[string]string{}}
	if r.File.set {
		e.File = b.str(p.child("file"), r.File)
		if msg := sharedProblem(e.File); msg != "" {
			b.ps.add(p.child("file"), "%q %s", e.File, msg)
		}
	}
	seen := map[string]bool{}
	if r.Values.set {
		m, ok := r.Values.v.(map[string]any)
		if !ok {
			b.ps.add(p.child("values"), "must be a table of KEY = \"value\", not %s", tomlTypeName(r.Values.v))
		}
		for _, k := range sortedKeys(m) {
			v := m[k]
			kp := p.child("values").child(k)
			s, ok := v.(string)
			if !ok {
				b.ps.add(kp, "must be a string, not %s", tomlTypeName(v))
				continue
			}
			b.envName(kp, k)
			if strings.ContainsAny(s, "\n\r\x00") {
				b.ps.add(kp, "must not contain a newline or NUL")
			}
			e.Values[k], seen[k] = s, true
		}
	}
	for _, name := range b.strs(p.child("secret_env"), r.SecretEnv) {
		b.envName(p.child("secret_env"), name)
		if seen[name] {
			b.ps.add(p.child("secret_env"), "%q is also set in values", name)
		}
		seen[name] = true
		e.SecretEnv = append(e.SecretEnv, name)
	}
	return e
}

// notify resolves the i-th [[notify]] entry.
func (b *builder) notify(i int, r *rawNotify) *Notify {
	p := newPath("notify").elem(i)
	n := &Notify{
		Command:         b.strs(p.child("command"), r.Command),
		URL:             b.str(p.child("url"), r.URL),
		SecretEnv:       b.str(p.child("secret_env"), r.SecretEnv),
		SlackWebhookEnv: b.str(p.child("slack_webhook_env"), r.SlackWebhookEnv),
		On:              b.strs(p.child("on"), r.On),
	}
	kinds := 0
	for _, set := range []bool{r.Command.set, r.URL.set, r.SlackWebhookEnv.set} {
		if set {
			kinds++
		}
	}
	if kinds != 1 {
		b.ps.add(p, "needs exactly one of command, url and slack_webhook_env")
	}
	if r.Command.set && len(n.Command) == 0 {
		b.ps.add(p.child("command"), "must not be empty")
	}
	if r.URL.set && !strings.HasPrefix(n.URL, "http://") && !strings.HasPrefix(n.URL, "https://") {
		b.ps.add(p.child("url"), "%q must be an http:// or https:// URL", n.URL)
	}
	if r.SecretEnv.set {
		b.envName(p.child("secret_env"), n.SecretEnv)
		if !r.URL.set {
			b.ps.add(p.child("secret_env"), "only for url")
		}
	}
	if r.SlackWebhookEnv.set {
		b.envName(p.child("slack_webhook_env"), n.SlackWebhookEnv)
	}
	for _, on := range n.On {
		if !slices.Contains(NotifyEvents, on) {
			b.ps.add(p.child("on"), "unknown event %q (want %s)", on, strings.Join(NotifyEvents, ", "))
		}
	}
	if !r.On.set {
		n.On = NotifyEvents
	}
	return n
}

func sortedKeys[V any](m map[string]V) []string {
	keys := keysOf(m)
	sort.Strings(keys)
	return keys
}
