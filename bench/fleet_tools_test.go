package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/template"

	"github.com/skiffdeploy/skiff/internal/testenv"
)

// The programs every fleet host runs, one per tool, so that each tool restarts and checks its own copy of
// the app and keeps its own incremental state: skiff's releases under /srv/app, Ansible's and the shell
// baseline's trees synced in place. They differ only in directory and port.
const (
	skiffPort, ansiblePort, shellPort = 8088, 8089, 8090
	skiffProgram                      = "app"
	ansibleProgram                    = "app-ansible"
	shellProgram                      = "app-shell"
)

// fleetPrograms is the supervisord configuration of every host. startsecs is supervisord's default: a
// restart waits until the program has stayed up that long, whichever tool asks for it.
func fleetPrograms(startsecs int) string {
	var b strings.Builder
	for _, p := range []struct {
		name, script string
		port         int
	}{
		{skiffProgram, "/srv/app/current/server.py", skiffPort},
		{ansibleProgram, "/srv/ansible-app/server.py", ansiblePort},
		{shellProgram, "/srv/shell-app/server.py", shellPort},
	} {
		fmt.Fprintf(&b, "\n[program:%s]\ncommand=/usr/bin/python3 %s --port %d\ndirectory=/srv\nuser=%s\n",
			p.name, p.script, p.port, testenv.TestUserName)
		fmt.Fprintf(&b, "autostart=false\nstartsecs=%d\nstopasgroup=true\nkillasgroup=true\n", startsecs)
	}
	return b.String()
}

// sshBase are the system ssh client options every baseline uses: the fleet's key and known_hosts, strict
// host key checking, and nothing from the invoking user's configuration.
func sshBase(env *testenv.Env) []string {
	return []string{
		"-F", "/dev/null", "-i", env.KeyFile, "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "BatchMode=yes",
		"-o", "UserKnownHostsFile=" + env.KnownHosts, "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
		"-o", "LogLevel=ERROR",
	}
}

// tools holds the command lines of the four contenders for one fleet, written once.
type tools struct {
	env     *testenv.Env
	n       int
	skiff   string // the built binary
	inv     string // skiff's hosts.toml
	ansCfg  string // ansible.cfg
	ansCP   string // Ansible's ssh ControlPath directory
	play    string // the playbook
	hosts   string // one user@address per line, for xargs and parallel-ssh
	shellSh string // the per-host script of the shell baseline
}

// newTools writes skiff's inventory, Ansible's inventory and configuration, and the baselines' host list
// for a fleet of n hosts.
func newTools(tb testing.TB, env *testenv.Env, skiff string) *tools {
	tb.Helper()
	n := len(env.Hosts)
	dir := tb.TempDir()
	t := &tools{env: env, n: n, skiff: skiff}
	t.inv = env.WriteInventory(tb, fmt.Sprintf(`[apps.app]
hosts = ["all"]
path = "/srv/app"
keep_releases = 3
supervisor.url = %q
supervisor.programs = [%q]
check.ports = [%d]
check.timeout = "30s"
rollout.parallel = %d
rollout.batch = "100%%"
`, testenv.FleetSupervisorURL, skiffProgram, skiffPort, n))

	var hosts, ansInv strings.Builder
	ansInv.WriteString("[fleet]\n")
	for _, h := range env.Hosts {
		fmt.Fprintf(&hosts, "%s@%s\n", env.User, h.IP)
		fmt.Fprintf(&ansInv, "%s ansible_host=%s ansible_port=%d\n", h.Name, h.IP, h.Port)
	}
	t.hosts = write(tb, filepath.Join(dir, "hosts.txt"), hosts.String())
	ansInvPath := write(tb, filepath.Join(dir, "ansible-hosts.ini"), ansInv.String())

	// The control sockets' paths must fit in a unix socket address (108 bytes), so not under TempDir.
	cp, err := os.MkdirTemp("", "cp")
	if err != nil {
		tb.Fatal(err)
	}
	t.ansCP = cp
	tb.Cleanup(func() { closeMasters(tb, cp); os.RemoveAll(cp) })
	tmpl, err := template.ParseFiles(filepath.Join("ansible", "ansible.cfg.tmpl"))
	if err != nil {
		tb.Fatal(err)
	}
	var cfg strings.Builder
	strategy := os.Getenv("SKIFF_BENCH_ANSIBLE_STRATEGY")
	if strategy == "" {
		strategy = "free"
	}
	err = tmpl.Execute(&cfg, map[string]any{
		"Inventory": ansInvPath, "Forks": n, "Strategy": strategy, "User": env.User, "KeyFile": env.KeyFile,
		"Tmp": dir, "ControlDir": cp, "KnownHosts": env.KnownHosts,
	})
	if err != nil {
		tb.Fatal(err)
	}
	t.ansCfg = write(tb, filepath.Join(dir, "ansible.cfg"), cfg.String())
	if t.play, err = filepath.Abs(filepath.Join("ansible", "deploy.yml")); err != nil {
		tb.Fatal(err)
	}

	ssh := "ssh " + strings.Join(sshBase(env), " ")
	// The port wait polls twice a second, as a script written for a fleet would: each poll forks a subshell and
	// execs sleep, and at ten a second on 50 hosts of two cores the polls alone took the CPU the apps needed to
	// start, so that none listened within the 30 seconds.
	t.shellSh = write(tb, filepath.Join(dir, "deploy-one.sh"), fmt.Sprintf(`#!/bin/sh
# deploy-one.sh SRC USER@HOST — the shell baseline's deploy of one host: rsync, restart, wait for the port.
set -e
rsync -a -e '%s' "$1/" "$2:/srv/shell-app/"
%s "$2" 'supervisorctl -s %s restart %s && { timeout 30 bash -c "until (exec 3<>/dev/tcp/127.0.0.1/%d) 2>/dev/null; do sleep 0.5; done" || { echo "error: port %d did not accept connections within 30 s of the restart" >&2; exit 1; }; }'
`, ssh, ssh, testenv.FleetSupervisorURL, shellProgram, shellPort, shellPort))
	if err := os.Chmod(t.shellSh, 0o755); err != nil {
		tb.Fatal(err)
	}
	return t
}

// write writes content to p and returns p.
func write(tb testing.TB, p, content string) string {
	tb.Helper()
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}

// skiffCmd is `skiff deploy app` of src to every host at once, with env added to its environment (such as
// cmd/skiff's SKIFF_CPUPROFILE).
func (t *tools) skiffCmd(src string, env []string) *exec.Cmd {
	cmd := exec.Command(t.skiff, "-i", t.inv, "--json", "--parallel", fmt.Sprint(t.n), "deploy", "app", "--source", src)
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// ansibleCmd is ansible-playbook of the deploy playbook with src as the tree to ship.
func (t *tools) ansibleCmd(src string) *exec.Cmd {
	cmd := exec.Command("ansible-playbook", t.play, "-e", "app_src="+src)
	cmd.Env = append(os.Environ(), "ANSIBLE_CONFIG="+t.ansCfg, "ANSIBLE_NOCOLOR=1")
	return cmd
}

// shellCmd is the shell baseline: deploy-one.sh on every host, all at once through xargs -P.
func (t *tools) shellCmd(src string) *exec.Cmd {
	return exec.Command("sh", "-c", fmt.Sprintf("xargs -P %d -I{} %s %s {} < %s", t.n, t.shellSh, src, t.hosts))
}

// floorCmd logs in to every host at once and runs true: the least any SSH tool must spend.
func (t *tools) floorCmd() *exec.Cmd {
	return exec.Command("parallel-ssh", "-i", "-h", t.hosts, "-p", fmt.Sprint(t.n), "-t", "60",
		"-x", strings.Join(sshBase(t.env), " "), "true")
}
