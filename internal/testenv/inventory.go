package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// InventoryTOML returns a hosts.toml for every host in Hosts: a [defaults]
// table with the login user, the user key and KnownHosts, and one
// [hosts.NAME] table per host with its address and port. extra is appended
// verbatim; it may add tables (apps, registries, groups of other hosts) but
// must not repeat the ones written here.
func (e *Env) InventoryTOML(extra string) string {
	var b strings.Builder
	b.WriteString("# Written by internal/testenv for one test.\n")
	b.WriteString("[defaults]\n")
	fmt.Fprintf(&b, "user = %s\n", TOMLString(e.User))
	fmt.Fprintf(&b, "identity_files = [%s]\n", TOMLString(e.KeyFile))
	fmt.Fprintf(&b, "known_hosts = %s\n", TOMLString(e.KnownHosts))
	for _, h := range e.Hosts {
		b.WriteString("\n")
		b.WriteString(h.InventoryEntry())
	}
	if extra != "" {
		b.WriteString("\n")
		b.WriteString(extra)
		if !strings.HasSuffix(extra, "\n") {
			b.WriteString("\n")
		}
	}
	return b.String()
}

// WriteInventory writes InventoryTOML(extra) to hosts.toml in a directory
// of tb's and returns its path.
func (e *Env) WriteInventory(tb testing.TB, extra string) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "hosts.toml")
	if err := os.WriteFile(path, []byte(e.InventoryTOML(extra)), 0o644); err != nil {
		tb.Fatalf("testenv: write inventory: %v", err)
	}
	return path
}

// InventoryEntry returns the host's [hosts.NAME] table (address and port),
// for adding a StartHost host to an inventory through extra.
func (h *Host) InventoryEntry() string {
	return fmt.Sprintf("[hosts.%s]\naddress = %s\nport = %d\n", tomlKey(h.Name), TOMLString(h.IP), h.Port)
}

// TOMLString quotes s as a TOML basic string, escaping what TOML requires; tests use it to write inventories
// with hostile values.
func TOMLString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\u%04X", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// tomlKey returns name bare when TOML allows it, quoted otherwise.
func tomlKey(name string) string {
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return TOMLString(name)
		}
	}
	return name
}
