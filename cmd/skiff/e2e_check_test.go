package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiffdeploy/skiff/internal/testenv"
)

// TestCheck_ThreeHostsOneThroughJump runs `skiff check --json` against three real sshd hosts, the third
// reached only through a jump host: all three report ok with the login user, and the jump host's sshd
// shows the forwarded connection to the third host's port.
func TestCheck_ThreeHostsOneThroughJump(t *testing.T) {
	env := testenv.Shared(t)
	jump := env.StartHostWith(t, testenv.HostOptions{Name: "bastion", Config: []string{"LogLevel DEBUG1"}})
	known, err := os.ReadFile(env.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	knownFile := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(knownFile, append(known, []byte(jump.KnownHostsLine+"\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	h3 := env.Hosts[2]
	inv := strings.Replace(env.InventoryTOML(jump.InventoryEntry()), "known_hosts = "+testenv.TOMLString(env.KnownHosts),
		"known_hosts = "+testenv.TOMLString(knownFile), 1)
	inv = strings.Replace(inv, fmt.Sprintf("[hosts.%s]\n", h3.Name), fmt.Sprintf("[hosts.%s]\njump = \"bastion\"\n", h3.Name), 1)
	file := filepath.Join(t.TempDir(), "hosts.toml")
	if err := os.WriteFile(file, []byte(inv), 0o644); err != nil {
		t.Fatal(err)
	}

	r := e2eSkiff(t, "-i", file, "--json", "--hosts", "h1,h2,h3", "check")
	if r.code != exitOK {
		t.Fatalf("check: exit %d\n%s", r.code, r)
	}
	var rep report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("check --json: %v\n%s", err, r.stdout)
	}
	if !rep.OK || len(rep.Hosts) != 3 {
		t.Fatalf("check --json: ok=%v with %d hosts, want 3 ok hosts\n%s", rep.OK, len(rep.Hosts), r.stdout)
	}
	for _, h := range rep.Hosts {
		if !h.OK || h.Check == nil || h.Check.User != env.User || !strings.HasPrefix(h.HostKey, "SHA256:") {
			t.Errorf("host %s: ok=%v check=%+v key=%q, want ok as %s with a verified host key", h.Host, h.OK, h.Check, h.HostKey, env.User)
		}
	}
	if want := fmt.Sprintf("port %d", h3.Port); !strings.Contains(jump.Log(), "direct-tcpip") || !strings.Contains(jump.Log(), want) {
		t.Errorf("the jump host's sshd log shows no forwarded connection to %s:\n%s", h3.Addr, jump.Log())
	}
}
