package fleet

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/skiffdeploy/skiff/deploy"
	"github.com/skiffdeploy/skiff/inventory"
	"github.com/skiffdeploy/skiff/remote"
)

// EnvReport is one host's environment file as `skiff env` shows it. Only the values the inventory writes
// literally are shown; secrets, and keys the inventory does not know (which may be secrets too), are
// redacted.
type EnvReport struct {
	File    string   `json:"file"`
	Present bool     `json:"present"`
	Mode    string   `json:"mode,omitempty"`
	Keys    []EnvKey `json:"keys"`
	Variant int      `json:"variant"`           // hosts with the same content have the same variant
	Differs []string `json:"differs_from"`      // hosts whose file has other content
	Current *bool    `json:"matches_inventory"` // null when a secret_env is not set locally
	content string   // the file's content (secrets included), compared across hosts, never shown
}

// EnvKey is one key of a host's environment file.
type EnvKey struct {
	Key    string `json:"key"`
	Value  string `json:"value,omitempty"`
	Secret bool   `json:"redacted,omitempty"`
}

// Env reads the app's environment file ([apps.APP.env]) on each host, with secrets redacted, and says which
// hosts differ from each other and from the inventory.
func (e *Engine) Env(ctx context.Context, req AppRequest) (*Report, error) {
	app, ok := e.cfg.Inventory.Apps[req.App]
	if ok && app.Env == nil {
		return nil, requestf("env: app %s has no [apps.%s.env] in %s", app.Name, app.Name, e.cfg.Inventory.File)
	}
	var want map[string]string
	var renderErr error
	if ok {
		var data []byte
		if data, renderErr = deploy.RenderEnv(app.Env, e.cfg.Secret); renderErr == nil {
			want, _ = deploy.ParseEnv(data)
		}
	}
	rep, err := e.inspect(ctx, "env", req, false, func(ctx context.Context, app *inventory.App, conn *remote.Conn, r *HostResult) error {
		he, err := deploy.ReadEnv(ctx, conn, app)
		if err != nil {
			return err
		}
		env := &EnvReport{File: deploy.EnvPath(app), Present: he.Present, Keys: []EnvKey{}}
		if he.Present {
			env.Mode = fmt.Sprintf("%04o", he.Mode)
			env.content = envContent(he.Values)
			if renderErr == nil {
				same := maps.Equal(he.Values, want)
				env.Current = &same
			}
		}
		for _, k := range slices.Sorted(maps.Keys(he.Values)) {
			if v, literal := app.Env.Values[k]; literal && v == he.Values[k] {
				env.Keys = append(env.Keys, EnvKey{Key: k, Value: v})
			} else {
				env.Keys = append(env.Keys, EnvKey{Key: k, Secret: true})
			}
		}
		r.Env = env
		return nil
	})
	if err == nil {
		compareEnv(rep.Hosts)
	}
	return rep, err
}

// envContent is a canonical form of a file's values, for comparing hosts.
func envContent(values map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(values)) {
		b.WriteString(k + "=" + values[k] + "\n")
	}
	return b.String()
}

// compareEnv numbers the distinct contents (in host order) and lists, for each host, the hosts that differ.
func compareEnv(results []*HostResult) {
	variants := map[string]int{}
	for _, r := range results {
		if r.Env == nil {
			continue
		}
		key := fmt.Sprint(r.Env.Present, r.Env.content)
		if _, ok := variants[key]; !ok {
			variants[key] = len(variants) + 1
		}
		r.Env.Variant = variants[key]
	}
	for _, r := range results {
		if r.Env == nil {
			continue
		}
		r.Env.Differs = []string{}
		for _, other := range results {
			if other.Env != nil && other.Env.Variant != r.Env.Variant {
				r.Env.Differs = append(r.Env.Differs, other.Host)
			}
		}
	}
}
