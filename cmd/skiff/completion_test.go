package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCompletion_Bash sources `skiff completion bash` in a real bash and asks its completion function what
// TAB would offer, with skiff on PATH (this test binary, see skiffAsMain) and an inventory in the directory.
func TestCompletion_Bash(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin, work := t.TempDir(), t.TempDir()
	e2eWrite(t, filepath.Join(bin, "skiff"), "#!/bin/sh\n"+skiffAsMain+"=1 exec '"+exe+"' \"$@\"\n")
	if err := os.Chmod(filepath.Join(bin, "skiff"), 0o755); err != nil {
		t.Fatal(err)
	}
	e2eWrite(t, filepath.Join(work, "hosts.toml"), `[hosts.web1]
address = "10.0.0.1"
groups = ["web"]
[hosts.db1]
address = "10.0.0.2"
[apps.api]
hosts = ["web"]
path = "/srv/api"
[apps.shop]
hosts = ["web1"]
path = "/srv/shop"
image = "registry.example.com/shop"
service = "app"
`)
	script := `set -e
source <(skiff completion bash)
complete -p skiff
tab() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); _skiff_complete; echo "$* => ${COMPREPLY[*]}"; }
tab skiff dep
tab skiff deploy ""
tab skiff deploy s
tab skiff --hosts ""
tab skiff --hosts web1,d
tab skiff lock status ""
tab skiff completion ""
tab skiff deploy api --ta
`
	cmd := exec.Command(bash, "--norc", "--noprofile", "-c", script)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "SKIFF_INVENTORY=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}
	for _, want := range []string{
		"complete -o default -F _skiff_complete skiff",
		"skiff dep => deploy\n",
		"skiff deploy  => api shop\n",
		"skiff deploy s => shop\n",
		"skiff --hosts  => all db1 web web1\n",
		"skiff --hosts web1,d => web1,db1\n",
		"skiff lock status  => api shop\n",
		"skiff completion  => bash fish zsh\n",
		"skiff deploy api --ta => --tag\n",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("bash completion lacks %q:\n%s", want, out)
		}
	}
}

func TestCompletion_ScriptsAndUsage(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		r := e2eSkiff(t, "completion", shell)
		if r.code != 0 || !strings.Contains(r.stdout, completeCommand) {
			t.Errorf("completion %s: %s", shell, r)
		}
	}
	if r := e2eSkiff(t, "completion", "tcsh"); r.code != exitUsage {
		t.Errorf("completion tcsh: want exit 2, got %s", r)
	}
	if r := e2eSkiff(t, "--help"); strings.Contains(r.stdout, completeCommand) || strings.Contains(r.stdout, "(default: false)") || strings.Contains(r.stdout, "(default: 0)") {
		t.Errorf("help shows the hidden command or switch defaults:\n%s", r.stdout)
	}
	r := e2eSkiff(t, "deploy", "--help")
	if strings.Contains(r.stdout, "--compose docker compose") || strings.Contains(r.stdout, "(default: 0)") || !strings.Contains(r.stdout, "--compose MODE") {
		t.Errorf("deploy --help has a bad placeholder or a doubled default:\n%s", r.stdout)
	}
}
