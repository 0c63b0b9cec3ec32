package testenv

import (
	"os"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

func TestTOMLString_Escapes(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "plain path", in: "/tmp/x/id_ed25519", want: `"/tmp/x/id_ed25519"`},
		{name: "quote and backslash", in: `a"b\c`, want: `"a\"b\\c"`},
		{name: "control characters", in: "a\nb\x7f", want: `"a\u000Ab\u007F"`},
		{name: "unicode kept", in: "bön", want: `"bön"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := TOMLString(tc.in)
			if got != tc.want {
				t.Fatalf("TOMLString(%q) = %s, want %s", tc.in, got, tc.want)
			}
			var v struct{ S string }
			if _, err := toml.Decode("s = "+got, &v); err != nil || v.S != tc.in {
				t.Fatalf("decoding %s gave %q, %v", got, v.S, err)
			}
		})
	}
}

func TestTOMLKey_QuotesOnlyWhenNeeded(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{name: "bare", in: "web-1_a", want: "web-1_a"},
		{name: "dotted", in: "a.b", want: `"a.b"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tomlKey(tc.in); got != tc.want {
				t.Errorf("tomlKey(%q) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}

func TestEnv_WriteInventory(t *testing.T) {
	e := Shared(t)
	extra := e.StartHost(t, "inv-extra")
	app, err := os.ReadFile("testdata/app.toml")
	if err != nil {
		t.Fatal(err)
	}
	path := e.WriteInventory(t, extra.InventoryEntry()+"\n"+string(app))

	var inv struct {
		Defaults struct {
			User          string   `toml:"user"`
			IdentityFiles []string `toml:"identity_files"`
			KnownHosts    string   `toml:"known_hosts"`
		} `toml:"defaults"`
		Hosts map[string]struct {
			Address string `toml:"address"`
			Port    int    `toml:"port"`
		} `toml:"hosts"`
		Apps map[string]map[string]any `toml:"apps"`
	}
	if _, err := toml.DecodeFile(path, &inv); err != nil {
		t.Fatal(err)
	}
	if inv.Defaults.User != e.User || inv.Defaults.KnownHosts != e.KnownHosts ||
		len(inv.Defaults.IdentityFiles) != 1 || inv.Defaults.IdentityFiles[0] != e.KeyFile {
		t.Errorf("defaults = %+v", inv.Defaults)
	}
	for _, h := range append(append([]*Host(nil), e.Hosts...), extra) {
		got, ok := inv.Hosts[h.Name]
		if !ok || got.Address != h.IP || got.Port != h.Port {
			t.Errorf("hosts.%s = %+v (present %v), want %s port %d", h.Name, got, ok, h.IP, h.Port)
		}
	}
	if len(inv.Hosts) != len(e.Hosts)+1 {
		t.Errorf("%d hosts, want %d", len(inv.Hosts), len(e.Hosts)+1)
	}
	if _, ok := inv.Apps["demo"]; !ok || !strings.Contains(string(app), "[apps.demo]") {
		t.Errorf("extra TOML not appended: apps = %v", inv.Apps)
	}
}
