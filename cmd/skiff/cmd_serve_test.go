package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServe_RefusesToStart checks that `skiff serve` exits 2, naming what is missing, before it listens:
// an unknown trigger app, no API token, a trigger secret not set, an address it cannot listen on.
func TestServe_RefusesToStart(t *testing.T) {
	inv := filepath.Join(t.TempDir(), "hosts.toml")
	write := func(app string) {
		data := "[hosts.web1]\naddress = \"127.0.0.1\"\n\n[apps.shop]\nhosts = [\"web1\"]\npath = \"/srv/shop\"\nimage = \"r.example.com/shop\"\nservice = \"app\"\n\n" +
			"[serve]\nstate = \"serve.db\"\n\n[[triggers]]\nname = \"shop-registry\"\nkind = \"registry\"\nsecret_env = \"TEST_HOOK_SECRET\"\napp = \"" + app + "\"\n"
		if err := os.WriteFile(inv, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		app  string
		env  map[string]string
		args []string
		want string
	}{
		{"unknown app", "nope", nil, nil, `triggers[0].app: unknown app "nope"`},
		{"no token", "shop", nil, nil, "SKIFF_SERVE_TOKEN (the API token, [serve] token_env) is not set"},
		{"no trigger secret", "shop", map[string]string{"SKIFF_SERVE_TOKEN": "t"}, nil, "trigger shop-registry: TEST_HOOK_SECRET (secret_env) is not set"},
		{"bad listen address", "shop", map[string]string{"SKIFF_SERVE_TOKEN": "t", "TEST_HOOK_SECRET": "s"}, []string{"--listen", "256.0.0.1:1"}, "serve: listen tcp"},
		{"an argument", "shop", nil, []string{"extra"}, `serve takes no arguments, not "extra"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SKIFF_SERVE_TOKEN", "")
			t.Setenv("TEST_HOOK_SECRET", "")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			write(tc.app)
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append([]string{"skiff", "-i", inv, "serve"}, tc.args...), strings.NewReader(""), &stdout, &stderr)
			if code != exitUsage || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit 2 with %q", code, stderr.String(), tc.want)
			}
		})
	}
}
