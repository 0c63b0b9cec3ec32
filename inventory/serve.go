package inventory

import (
	"fmt"
	"net"
	"path"
	"strings"
	"text/template"

	"github.com/BurntSushi/toml"
)

// Serve is the [serve] table: where `skiff serve` listens, where it keeps its jobs and how the API is
// protected.
type Serve struct {
	// Listen is the host:port of the HTTP server, "127.0.0.1:8099" unless set.
	Listen string `json:"listen"`
	// State is the job store file, resolved like source; "" means the caller's default (the user state dir).
	State string `json:"state,omitempty"`
	// TokenEnv names the environment variable holding the bearer token of the API and the status page,
	// SKIFF_SERVE_TOKEN unless set.
	TokenEnv string `json:"token_env"`
	// MaxJobs is how many jobs (of different apps) run at once, 4 unless set.
	MaxJobs int `json:"max_jobs"`
}

// The kinds of trigger.
const (
	TriggerRegistry = "registry"
	TriggerGitLab   = "gitlab"
	TriggerGitHub   = "github"
	TriggerGeneric  = "generic"
)

// Trigger is one [[triggers]] entry: a webhook at POST /hooks/NAME that queues deploys of App.
type Trigger struct {
	Name string `json:"name"`
	// Kind is TriggerRegistry, TriggerGitLab, TriggerGitHub or TriggerGeneric; it decides how a request is
	// verified and read.
	Kind string `json:"kind"`
	// SecretEnv names the environment variable holding the shared secret (bearer token, GitLab token or
	// HMAC key).
	SecretEnv string `json:"secret_env"`
	App       string `json:"app"`
	// Ref is a glob (path.Match) on the branch or tag name (gitlab, github) or the image tag (registry);
	// empty matches all.
	Ref string `json:"ref,omitempty"`
	// Repo is where a source app's commit is fetched from (any git URL).
	Repo string `json:"repo,omitempty"`
	// Tag is a text/template of the image tag an event deploys (image apps), over TagData; empty means the
	// event's tag, or the commit SHA.
	Tag string `json:"tag,omitempty"`
}

// TagData is what a trigger's tag template may use.
type TagData struct {
	SHA, ShortSHA, Ref, Tag string
}

// ExpandTag renders the trigger's tag template for one event; the result must be a valid image tag.
func (t *Trigger) ExpandTag(d TagData) (string, error) {
	tmpl, err := template.New("tag").Option("missingkey=error").Parse(t.Tag)
	if err != nil {
		return "", fmt.Errorf("tag template: %w", err)
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, d); err != nil {
		return "", fmt.Errorf("tag template: %w", err)
	}
	if !validTag(b.String()) {
		return "", fmt.Errorf("tag template gives %q, which is not an image tag", b.String())
	}
	return b.String(), nil
}

type (
	rawServe struct {
		Listen   rawValue `toml:"listen"`
		State    rawValue `toml:"state"`
		TokenEnv rawValue `toml:"token_env"`
		MaxJobs  rawValue `toml:"max_jobs"`
	}
	rawTrigger struct {
		Name      rawValue `toml:"name"`
		Kind      rawValue `toml:"kind"`
		SecretEnv rawValue `toml:"secret_env"`
		App       rawValue `toml:"app"`
		Ref       rawValue `toml:"ref"`
		Repo      rawValue `toml:"repo"`
		Tag       rawValue `toml:"tag"`
	}
)

// serve decodes the [serve] table and the [[triggers]] array.
func (d *decoder) serve(serve, triggers toml.Primitive) (*rawServe, []*rawTrigger) {
	var s *rawServe
	if r := (&rawServe{}); d.table(serve, toml.Key{"serve"}, r) {
		s = r
	}
	return s, decodeArray[rawTrigger](d, triggers, toml.Key{"triggers"})
}

// Built-in defaults of [serve].
const (
	defaultListen   = "127.0.0.1:8099"
	defaultTokenEnv = "SKIFF_SERVE_TOKEN"
	defaultMaxJobs  = 4
)

// serveAndTriggers resolves [serve] and [[triggers]]; apps must be resolved first.
func (b *builder) serveAndTriggers(inv *Inventory) {
	if r := b.raw.serve; r != nil {
		p := newPath("serve")
		s := &Serve{
			Listen:   b.str(p.child("listen"), r.Listen),
			TokenEnv: b.str(p.child("token_env"), r.TokenEnv),
			MaxJobs:  b.atLeast(p.child("max_jobs"), r.MaxJobs, defaultMaxJobs, 1),
		}
		s.State = b.local(p.child("state"), b.str(p.child("state"), r.State))
		if !r.Listen.set {
			s.Listen = defaultListen
		} else if _, _, err := net.SplitHostPort(s.Listen); err != nil {
			b.ps.add(p.child("listen"), "%q is not host:port", s.Listen)
		}
		switch {
		case !r.TokenEnv.set:
			s.TokenEnv = defaultTokenEnv
		case s.TokenEnv != defaultTokenEnv: // skiff's own variable for its own token, not one it hands on
			b.envName(p.child("token_env"), s.TokenEnv)
		}
		inv.Serve = s
	}
	inv.Triggers = []*Trigger{}
	for i, r := range b.raw.triggers {
		inv.Triggers = append(inv.Triggers, b.trigger(inv, i, r))
	}
}

// trigger resolves the i-th [[triggers]] entry.
func (b *builder) trigger(inv *Inventory, i int, r *rawTrigger) *Trigger {
	p := newPath("triggers").elem(i)
	t := &Trigger{
		Name:      b.str(p.child("name"), r.Name),
		Kind:      b.str(p.child("kind"), r.Kind),
		SecretEnv: b.str(p.child("secret_env"), r.SecretEnv),
		App:       b.str(p.child("app"), r.App),
		Ref:       b.str(p.child("ref"), r.Ref),
		Repo:      b.str(p.child("repo"), r.Repo),
		Tag:       b.str(p.child("tag"), r.Tag),
	}
	for _, req := range []struct {
		key string
		set bool
	}{{"name", r.Name.set}, {"kind", r.Kind.set}, {"secret_env", r.SecretEnv.set}, {"app", r.App.set}} {
		if !req.set {
			b.ps.add(p.child(req.key), "is required")
		}
	}
	if r.Name.set && b.name(p.child("name"), "trigger", t.Name) {
		for j, other := range inv.Triggers {
			if other.Name == t.Name {
				b.ps.add(p.child("name"), "duplicate trigger name %q (also triggers[%d])", t.Name, j)
			}
		}
	}
	if r.SecretEnv.set {
		b.envName(p.child("secret_env"), t.SecretEnv)
	}
	switch t.Kind {
	case TriggerRegistry, TriggerGitLab, TriggerGitHub, TriggerGeneric, "":
	default:
		b.ps.add(p.child("kind"), "unknown kind %q (want registry, gitlab, github or generic)", t.Kind)
	}
	if _, err := path.Match(t.Ref, ""); err != nil {
		b.ps.add(p.child("ref"), "invalid glob %q: %v", t.Ref, err)
	}
	app, ok := inv.Apps[t.App]
	if r.App.set && !ok {
		b.ps.add(p.child("app"), "unknown app %q", t.App)
	}
	if ok {
		b.triggerFor(p, r, t, app)
	}
	return t
}

// triggerFor checks the keys that depend on the kind of the trigger's app.
func (b *builder) triggerFor(p keyPath, r *rawTrigger, t *Trigger, app *App) {
	if app.Kind == KindImage {
		if r.Repo.set {
			b.ps.add(p.child("repo"), "only for source apps (app %s is an image app)", app.Name)
		}
		if r.Tag.set {
			if t.Kind == TriggerRegistry {
				b.ps.add(p.child("tag"), "not used by registry triggers: the pushed tag is deployed")
			} else if _, err := t.ExpandTag(TagData{SHA: strings.Repeat("0", 40), ShortSHA: "00000000", Ref: "main", Tag: "v1"}); err != nil {
				b.ps.add(p.child("tag"), "%v", err)
			}
		}
		return
	}
	if t.Kind == TriggerRegistry {
		b.ps.add(p.child("app"), "registry triggers deploy image apps; %s is a source app", app.Name)
	}
	if r.Tag.set {
		b.ps.add(p.child("tag"), "only for image apps (app %s is a source app)", app.Name)
	}
	if (t.Kind == TriggerGitLab || t.Kind == TriggerGitHub || t.Kind == TriggerGeneric) && !r.Repo.set {
		b.ps.add(p.child("repo"), "is required: source app %s is fetched from it", app.Name)
	} else if r.Repo.set {
		b.word(p.child("repo"), t.Repo)
	}
}
