package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiffdeploy/skiff/internal/testenv"
)

// TestCLI_ExitCodes checks the exit codes DESIGN.md promises, against real hosts where a host is involved.
func TestCLI_ExitCodes(t *testing.T) {
	t.Parallel()
	env := testenv.Shared(t)
	h1, h2 := env.Hosts[0], env.Hosts[1]
	dir := t.TempDir()
	src := e2eAppTree(t, "exit", nil)
	appPath := filepath.Join(h1.Root, "srv", "exitcodes")
	t.Cleanup(func() { os.RemoveAll(appPath) })
	app := fmt.Sprintf("[apps.web]\nhosts = [\"h1\"]\npath = %s\nsource = %s\n", testenv.TOMLString(appPath), testenv.TOMLString(src))

	// An inventory like the environment's, but trusting other keys than the hosts have.
	withKnownHosts := func(name, content string) string {
		kh := filepath.Join(dir, name+".known_hosts")
		e2eWrite(t, kh, content)
		inv := filepath.Join(dir, name+".toml")
		e2eWrite(t, inv, strings.Replace(env.InventoryTOML(app), testenv.TOMLString(env.KnownHosts), testenv.TOMLString(kh), 1))
		return inv
	}
	good := env.WriteInventory(t, app)
	unknownKey := withKnownHosts("unknown", "")
	// h1's address with h2's key: the key h1 presents is not the one recorded.
	changedKey := withKnownHosts("changed", strings.Replace(h2.KnownHostsLine, fmt.Sprintf("[%s]:%d", h2.IP, h2.Port), fmt.Sprintf("[%s]:%d", h1.IP, h1.Port), 1)+"\n")
	closed := filepath.Join(dir, "closed.toml")
	e2eWrite(t, closed, fmt.Sprintf("[defaults]\nuser = %s\nidentity_files = [%s]\nknown_hosts = %s\nconnect_timeout = \"3s\"\n\n[hosts.h1]\naddress = \"127.0.0.1\"\nport = %d\n\n%s",
		testenv.TOMLString(env.User), testenv.TOMLString(env.KeyFile), testenv.TOMLString(env.KnownHosts), e2eFreePort(t), app))
	bad := filepath.Join(dir, "bad.toml")
	e2eWrite(t, bad, "[defaults]\nuser = \"deploy\"\n\n[hosts.web1]\naddress = \"10.0.0.1\"\nport = \"22\"\n")

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{name: "deploy works", args: []string{"-i", good, "deploy", "web"}, code: exitOK, want: "deploy: 1 host(s), 1 ok, 0 failed"},
		{name: "unknown app", args: []string{"-i", good, "deploy", "nosuch"}, code: exitUsage,
			want: `skiff: deploy: no app "nosuch" in ` + good + " (have: web)"},
		{name: "unknown command flag", args: []string{"-i", good, "deploy", "web", "--tga", "x"}, code: exitUsage, want: "unknown flag --tga for deploy"},
		{name: "unknown command", args: []string{"-i", good, "frobnicate"}, code: exitUsage, want: "skiff: unknown command \"frobnicate\"\nusage: skiff "},
		{name: "unknown subcommand", args: []string{"-i", good, "lock", "frob", "web"}, code: exitUsage, want: "usage: skiff "},
		{name: "two apps", args: []string{"-i", good, "rollback", "web", "web"}, code: exitUsage, want: "rollback: give exactly one APP (got 2 arguments)"},
		{name: "unknown host in --hosts", args: []string{"-i", good, "--hosts", "nosuch", "deploy", "web"}, code: exitUsage, want: "--hosts: "},
		{name: "source is not a directory", args: []string{"-i", good, "deploy", "web", "--source", filepath.Join(dir, "missing")}, code: exitUsage,
			want: "deploy web: source " + filepath.Join(dir, "missing") + " is not a directory"},
		{name: "bad inventory", args: []string{"-i", bad, "deploy", "web"}, code: exitUsage, want: "skiff: " + bad + ":6: hosts.web1.port: "},
		{name: "missing inventory", args: []string{"-i", filepath.Join(dir, "none.toml"), "check"}, code: exitUsage, want: filepath.Join(dir, "none.toml")},
		{name: "unknown host key", args: []string{"-i", unknownKey, "deploy", "web"}, code: exitUnreachable, want: "host key unknown"},
		{name: "unknown host key on check", args: []string{"-i", unknownKey, "--hosts", "h1", "check"}, code: exitUnreachable, want: "host key unknown"},
		{name: "changed host key", args: []string{"-i", changedKey, "status", "web"}, code: exitUnreachable, want: "host key CHANGED"},
		{name: "nothing listens", args: []string{"-i", closed, "deploy", "web"}, code: exitUnreachable, want: "connection refused"},
		{name: "rollback without an earlier release", args: []string{"-i", good, "rollback", "web"}, code: exitFailed, want: "no earlier good release"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e2eSkiff(t, tc.args...)
			if r.code != tc.code || !strings.Contains(r.all(), tc.want) {
				t.Errorf("skiff %s: want exit %d with %q, got %s", strings.Join(tc.args, " "), tc.code, tc.want, r)
			}
		})
	}
	if data, err := os.ReadFile(unknownKey[:len(unknownKey)-len(".toml")] + ".known_hosts"); err != nil || len(data) != 0 {
		t.Errorf("an unknown host key was written to known_hosts without --accept-new-host-keys: %q, %v", data, err)
	}
}
