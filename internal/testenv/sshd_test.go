package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh/knownhosts"
)

// trustOnly writes a known_hosts file holding only h's line.
func trustOnly(t *testing.T, h *Host) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(path, []byte(h.KnownHostsLine+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestEnv_StartHostKnownOnlyThroughItsOwnLine(t *testing.T) {
	e := Shared(t)
	h := e.StartHost(t, "extra")
	for _, other := range e.Hosts {
		if other.Addr == h.Addr {
			t.Fatalf("extra host shares %s with %s", h.Addr, other.Name)
		}
	}
	tests := []struct {
		name       string
		knownHosts string
		wantOK     bool
	}{
		{name: "env known_hosts refuses it", knownHosts: e.KnownHosts, wantOK: false},
		{name: "its own line trusts it", knownHosts: trustOnly(t, h), wantOK: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runSSH(t, h, tc.knownHosts, "true")
			if tc.wantOK && err != nil {
				t.Fatalf("ssh: %v: %s\nsshd log:\n%s", err, out, h.Log())
			}
			if !tc.wantOK && (err == nil || !strings.Contains(out, "Host key verification failed")) {
				t.Fatalf("ssh = %v, %q; want host key verification failure", err, out)
			}
		})
	}
}

func TestHost_StopRestartKeepsKeyAndPort(t *testing.T) {
	e := Shared(t)
	h := e.StartHost(t, "restart")
	kh := trustOnly(t, h)
	addr, fp, line := h.Addr, h.HostKeyFingerprint, h.KnownHostsLine
	if !strings.HasPrefix(fp, "SHA256:") {
		t.Errorf("fingerprint %q lacks SHA256: prefix", fp)
	}
	if want := "[" + h.IP + "]:" + strconv.Itoa(h.Port) + " ssh-ed25519 "; !strings.HasPrefix(line, want) {
		t.Errorf("known_hosts line %q, want prefix %q", line, want)
	}

	steps := []struct {
		name   string
		do     func() error
		wantOK bool
	}{
		{name: "running", do: func() error { return nil }, wantOK: true},
		{name: "stopped", do: h.Stop, wantOK: false},
		{name: "stopped twice", do: h.Stop, wantOK: false},
		{name: "restarted after stop", do: h.Restart, wantOK: true},
		{name: "restarted while running", do: h.Restart, wantOK: true},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if err := st.do(); err != nil {
				t.Fatal(err)
			}
			if h.Running() != st.wantOK {
				t.Errorf("Running() = %v", h.Running())
			}
			out, err := runSSH(t, h, kh, "true")
			if st.wantOK && err != nil {
				t.Fatalf("ssh: %v: %s\nsshd log:\n%s", err, out, h.Log())
			}
			if !st.wantOK && err == nil {
				t.Fatalf("ssh to a stopped host succeeded")
			}
			if h.Addr != addr || h.HostKeyFingerprint != fp || h.KnownHostsLine != line {
				t.Errorf("identity changed: %s %s", h.Addr, h.HostKeyFingerprint)
			}
		})
	}
}

func TestHost_StopKillsSessionProcesses(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("finding session processes needs /proc")
	}
	e := Shared(t)
	h := e.StartHost(t, "stray")
	kh := trustOnly(t, h)

	// One process that daemonizes away from sshd, one held by a live session.
	if out, err := runSSH(t, h, kh, "setsid sleep 301 </dev/null >/dev/null 2>&1 &"); err != nil {
		t.Fatalf("ssh: %v: %s", err, out)
	}
	session := exec.Command("ssh", append(replaceKnownHosts(h.SSHArgs(), kh), "sleep 302")...)
	if err := session.Start(); err != nil {
		t.Fatal(err)
	}
	defer session.Process.Kill()

	marker := []byte("SKIFF_TESTENV_TOKEN=" + h.token + "\x00")
	var pids []int
	deadline := time.Now().Add(10 * time.Second)
	for len(pids) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		pids = markedProcs(marker)
	}
	if len(pids) < 2 {
		t.Fatalf("found %d session processes, want at least 2", len(pids))
	}
	sshdPid := h.proc.cmd.Process.Pid

	if err := h.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range append(pids, sshdPid) {
		if alive(pid) {
			t.Errorf("process %d survived Stop", pid)
		}
	}
	done := make(chan error, 1)
	go func() { done <- session.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("session ended without error after Stop")
		}
	case <-time.After(10 * time.Second):
		t.Errorf("ssh client still connected after Stop")
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	i := bytes.LastIndexByte(data, ')')
	return i < 0 || !bytes.HasPrefix(bytes.TrimSpace(data[i+1:]), []byte("Z"))
}

func TestHost_SFTPSubsystem(t *testing.T) {
	e := Shared(t)
	h := e.Host("h2")
	sftp, err := exec.LookPath("sftp")
	if err != nil {
		SkipOrFail(t, "sftp client (openssh-client) not installed")
	}
	local := filepath.Join(t.TempDir(), "payload.txt")
	if err := os.WriteFile(local, []byte("hello over sftp\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	remoteDir := filepath.Join(h.Root, "sftp-"+rand.Text())
	batch := filepath.Join(t.TempDir(), "batch")
	script := "mkdir " + remoteDir + "\nput " + local + " " + remoteDir + "/payload.txt\nls -l " + remoteDir + "\n"
	if err := os.WriteFile(batch, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-b", batch, "-P", strconv.Itoa(h.Port)}
	for _, a := range h.SSHArgs() {
		if a == "-p" {
			break // sftp takes -P; the destination is added below
		}
		args = append(args, a)
	}
	args = append(args, e.User+"@"+h.IP)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, sftp, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("sftp: %v: %s\nsshd log:\n%s", err, out, h.Log())
	}
	got, err := os.ReadFile(filepath.Join(remoteDir, "payload.txt"))
	if err != nil || string(got) != "hello over sftp\n" {
		t.Fatalf("uploaded file = %q, %v", got, err)
	}
	fi, err := os.Stat(filepath.Join(remoteDir, "payload.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if uid := int(fi.Sys().(*syscall.Stat_t).Uid); uid != e.UID {
		t.Errorf("uploaded file owned by uid %d, want %d", uid, e.UID)
	}
}

func TestHost_StartReportsBusyPort(t *testing.T) {
	e := Shared(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	h, err := e.layoutHost(HostOptions{Name: "busy"})
	if err != nil {
		t.Fatal(err)
	}
	h.IP, h.Port, h.Addr = "127.0.0.1", l.Addr().(*net.TCPAddr).Port, l.Addr().String()
	err = h.start(t.Context())
	if err == nil {
		h.Stop()
		t.Fatal("sshd started on a busy port")
	}
	if !errors.Is(err, errAddrInUse) || !strings.Contains(err.Error(), "Address already in use") {
		t.Errorf("error = %v; want errAddrInUse with the sshd log", err)
	}
	if h.Running() {
		t.Errorf("host reported running")
	}
}

func TestEnv_StartHostWithKeyTypesAndConfig(t *testing.T) {
	e := Shared(t)
	h := e.StartHostWith(t, HostOptions{
		Name:         "multikey",
		HostKeyTypes: []string{"ecdsa", "ed25519", "rsa"},
		Config:       []string{"AllowTcpForwarding no"},
	})
	wantTypes := []string{"ecdsa-sha2-nistp256", "ssh-ed25519", "ssh-rsa"}
	if len(h.HostKeys) != len(wantTypes) {
		t.Fatalf("%d host keys, want %d", len(h.HostKeys), len(wantTypes))
	}
	for i, typ := range wantTypes {
		t.Run(typ, func(t *testing.T) {
			if got := h.HostKeys[i].Type(); got != typ {
				t.Fatalf("host key %d is %s, want %s", i, got, typ)
			}
			// The client accepts exactly this key type, so the server must
			// offer it.
			kh := filepath.Join(t.TempDir(), "known_hosts")
			line := knownhosts.Line([]string{h.Addr}, h.HostKeys[i])
			if err := os.WriteFile(kh, []byte(line+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			alg := typ
			if typ == "ssh-rsa" {
				alg = "rsa-sha2-256" // ssh-rsa names the disabled SHA-1 signature
			}
			args := append([]string{"-o", "HostKeyAlgorithms=" + alg}, replaceKnownHosts(h.SSHArgs(), kh)...)
			out, err := exec.Command("ssh", append(args, "true")...).CombinedOutput()
			if err != nil {
				t.Fatalf("ssh with %s: %v: %s\nsshd log:\n%s", typ, err, out, h.Log())
			}
		})
	}
	if !strings.HasPrefix(h.KnownHostsLine, "["+h.IP+"]:"+strconv.Itoa(h.Port)+" ecdsa-sha2-nistp256 ") {
		t.Errorf("KnownHostsLine = %q, want the first (ecdsa) key", h.KnownHostsLine)
	}
	cfg, err := os.ReadFile(h.ConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	first, other := strings.Index(string(cfg), "AllowTcpForwarding no"), strings.Index(string(cfg), "AllowTcpForwarding yes")
	if first < 0 || first > other {
		t.Errorf("extra config does not come first:\n%s", cfg)
	}
}
