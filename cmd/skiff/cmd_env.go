package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/skiffdeploy/skiff/deploy"
	"github.com/skiffdeploy/skiff/inventory"
	"github.com/urfave/cli/v2"
)

// envReport is one host's environment file as `skiff env` shows it. Only the values the inventory writes
// literally are shown; secrets, and keys the inventory does not know (which may be secrets too), are
// redacted.
type envReport struct {
	File    string   `json:"file"`
	Present bool     `json:"present"`
	Mode    string   `json:"mode,omitempty"`
	Keys    []envKey `json:"keys"`
	Variant int      `json:"variant"`           // hosts with the same content have the same variant
	Differs []string `json:"differs_from"`      // hosts whose file has other content
	Current *bool    `json:"matches_inventory"` // null when a secret_env is not set locally
	content string   // the file's content (secrets included), compared across hosts, never printed
}

// envKey is one key of a host's environment file.
type envKey struct {
	Key    string `json:"key"`
	Value  string `json:"value,omitempty"`
	Secret bool   `json:"redacted,omitempty"`
}

const redacted = "[redacted]"

func envCommand() *cli.Command {
	return &cli.Command{
		Name:      "env",
		Usage:     "show APP's environment file ([apps.APP.env]) on each host, secrets redacted, and which hosts differ",
		ArgsUsage: "APP",
		Action: withApp("env", false, func(c *cli.Context, a *appRun) error {
			if a.app.Env == nil {
				return usagef("env: app %s has no [apps.%s.env] in %s", a.app.Name, a.app.Name, a.s.inv.File)
			}
			want, renderErr := deploy.RenderEnv(a.app.Env, a.opts.Secret)
			return a.inspectThen(c.Context, "env", func(ctx context.Context, h *inventory.Host, conn deploy.HostConn, r *hostResult) error {
				he, err := deploy.ReadEnv(ctx, conn, a.app)
				if err != nil {
					return err
				}
				rep := &envReport{File: deploy.EnvPath(a.app), Present: he.Present, Keys: []envKey{}}
				if he.Present {
					rep.Mode = fmt.Sprintf("%04o", he.Mode)
					values, _ := deploy.ParseEnv(want)
					rep.content = envContent(he.Values)
					if renderErr == nil {
						same := maps.Equal(he.Values, values)
						rep.Current = &same
					}
				}
				for _, k := range slices.Sorted(maps.Keys(he.Values)) {
					v, literal := a.app.Env.Values[k]
					if literal && v == he.Values[k] {
						rep.Keys = append(rep.Keys, envKey{Key: k, Value: v})
					} else {
						rep.Keys = append(rep.Keys, envKey{Key: k, Secret: true})
					}
				}
				r.Env = rep
				return nil
			}, func(results []hostResult) {
				compareEnv(results)
				for i := range results {
					if rep := results[i].Env; rep != nil {
						results[i].summary = envSummary(rep)
					}
				}
			})
		}),
	}
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
func compareEnv(results []hostResult) {
	variants := map[string]int{}
	for i := range results {
		rep := results[i].Env
		if rep == nil {
			continue
		}
		key := fmt.Sprint(rep.Present, rep.content)
		if _, ok := variants[key]; !ok {
			variants[key] = len(variants) + 1
		}
		rep.Variant = variants[key]
	}
	for i := range results {
		rep := results[i].Env
		if rep == nil {
			continue
		}
		rep.Differs = []string{}
		for j := range results {
			if other := results[j].Env; other != nil && other.Variant != rep.Variant {
				rep.Differs = append(rep.Differs, results[j].Host)
			}
		}
	}
}

func envSummary(rep *envReport) string {
	if !rep.Present {
		return rep.File + ": not written yet"
	}
	parts := []string{fmt.Sprintf("%s %s", rep.File, rep.Mode)}
	for _, k := range rep.Keys {
		v := k.Value
		if k.Secret {
			v = redacted
		}
		parts = append(parts, k.Key+"="+v)
	}
	switch {
	case rep.Current == nil:
	case *rep.Current:
		parts = append(parts, "(as the inventory says)")
	default:
		parts = append(parts, "(differs from the inventory: deploy to write it)")
	}
	if len(rep.Differs) > 0 {
		parts = append(parts, "DIFFERS from "+strings.Join(rep.Differs, ","))
	}
	return strings.Join(parts, "  ")
}
