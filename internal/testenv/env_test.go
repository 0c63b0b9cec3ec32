package testenv

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runSSH runs the system ssh client against h with the given known_hosts
// file and remote command.
func runSSH(t *testing.T, h *Host, knownHosts string, remote ...string) (string, error) {
	t.Helper()
	ssh, err := exec.LookPath("ssh")
	if err != nil {
		SkipOrFail(t, "ssh client (openssh-client) not installed")
	}
	args := append(replaceKnownHosts(h.SSHArgs(), knownHosts), remote...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, ssh, args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// replaceKnownHosts points ssh arguments from SSHArgs at another
// known_hosts file.
func replaceKnownHosts(args []string, knownHosts string) []string {
	for i, a := range args {
		if strings.HasPrefix(a, "UserKnownHostsFile=") {
			args[i] = "UserKnownHostsFile=" + knownHosts
		}
	}
	return args
}

func TestShared_SSHIntoEveryHost(t *testing.T) {
	e := Shared(t)
	if len(e.Hosts) != SharedHosts {
		t.Fatalf("got %d hosts, want %d", len(e.Hosts), SharedHosts)
	}
	for _, h := range e.Hosts {
		t.Run(h.Name, func(t *testing.T) {
			out, err := runSSH(t, h, e.KnownHosts, "id -un; echo $SKIFF_TESTENV_HOST; pwd")
			if err != nil {
				t.Fatalf("ssh %s: %v: %s\nsshd log:\n%s", h.Addr, err, out, h.Log())
			}
			want := e.User + "\n" + h.Name + "\n" + e.Home
			if out != want {
				t.Errorf("ssh output = %q, want %q", out, want)
			}
		})
	}
}

func TestShared_HostRootOwnedByUser(t *testing.T) {
	e := Shared(t)
	for _, h := range e.Hosts {
		t.Run(h.Name, func(t *testing.T) {
			fi, err := os.Stat(h.Root)
			if err != nil {
				t.Fatal(err)
			}
			st := fi.Sys().(*syscall.Stat_t)
			if int(st.Uid) != e.UID || int(st.Gid) != e.GID {
				t.Errorf("%s owned by %d:%d, want %d:%d", h.Root, st.Uid, st.Gid, e.UID, e.GID)
			}
			if h.Root != filepath.Join(e.Dir, "hosts", h.Name, "root") {
				t.Errorf("Root = %s", h.Root)
			}
		})
	}
}
