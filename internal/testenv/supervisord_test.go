package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// supervisordTestStart starts a supervisord in a fresh directory under t and
// stops it when t ends.
func supervisordTestStart(t *testing.T, opts SupervisordOptions) *Supervisord {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	s, err := StartSupervisord(opts)
	if errors.Is(err, ErrMissingTool) {
		SkipOrFail(t, err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("Stop() = %v", err)
		}
	})
	return s
}

// supervisordTestGetState posts supervisor.getState to network/addr and
// returns the HTTP status code.
func supervisordTestGetState(t *testing.T, network, addr, username, password string) int {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
		DisableKeepAlives: true,
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	body := `<?xml version="1.0"?><methodCall><methodName>supervisor.getState</methodName></methodCall>`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://localhost/RPC2", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if username != "" {
		req.SetBasicAuth(username, password)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("getState over %s %s: %v", network, addr, err)
	}
	defer resp.Body.Close()
	return resp.StatusCode
}

func TestStartSupervisord_AnswersOnSocketAndPort(t *testing.T) {
	const username, password = "skiff", "very-secret-pw"
	s := supervisordTestStart(t, SupervisordOptions{InetPort: -1, Username: username, Password: password})
	if !strings.HasPrefix(s.URL, "unix:///") || !strings.HasPrefix(s.InetURL, "http://127.0.0.1:") {
		t.Fatalf("URL = %q, InetURL = %q", s.URL, s.InetURL)
	}
	inetAddr := strings.TrimPrefix(s.InetURL, "http://")
	tests := []struct {
		name, network, addr, password string
		want                          int
	}{
		{name: "unix socket", network: "unix", addr: s.Socket, password: password, want: http.StatusOK},
		{name: "tcp", network: "tcp", addr: inetAddr, password: password, want: http.StatusOK},
		{name: "unix socket wrong password", network: "unix", addr: s.Socket, password: "nope", want: http.StatusUnauthorized},
		{name: "tcp wrong password", network: "tcp", addr: inetAddr, password: "nope", want: http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := supervisordTestGetState(t, tc.network, tc.addr, username, tc.password); got != tc.want {
				t.Errorf("getState status = %d, want %d", got, tc.want)
			}
		})
	}
	conf, err := os.ReadFile(s.Config)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(conf, []byte(password)) {
		t.Errorf("configuration %s contains the plain password", s.Config)
	}
}

func TestSupervisord_StopKillsPrograms(t *testing.T) {
	s := supervisordTestStart(t, SupervisordOptions{Programs: `
[program:sleeper]
command=/bin/sleep 1000
startsecs=0

[program:forker]
command=/bin/sh -c "/bin/sleep 1001 & exec /bin/sleep 1002"
startsecs=0
`})
	sid := s.PID()
	// supervisord plus sleeper, forker's sleep and its background sleep.
	deadline := time.Now().Add(10 * time.Second)
	for len(supervisordSessionMembers(sid)) < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("session %d has %v, want supervisord and three sleeps\n%s", sid, supervisordSessionMembers(sid), s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if left := supervisordSessionMembers(sid); len(left) != 0 {
		t.Errorf("after Stop, session %d still has %v", sid, left)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop() = %v", err)
	}
}

func TestStartSupervisord_Errors(t *testing.T) {
	tests := []struct {
		name    string
		opts    func(dir string) SupervisordOptions
		wantErr string
	}{
		{
			name:    "no directory",
			opts:    func(string) SupervisordOptions { return SupervisordOptions{} },
			wantErr: "Dir is required",
		},
		{
			name: "socket path too long",
			opts: func(dir string) SupervisordOptions {
				return SupervisordOptions{Dir: dir, Socket: filepath.Join(dir, strings.Repeat("s", 120))}
			},
			wantErr: "longer than 107 bytes",
		},
		{
			name: "newline in password",
			opts: func(dir string) SupervisordOptions {
				return SupervisordOptions{Dir: dir, Username: "u", Password: "a\nb"}
			},
			wantErr: "newlines",
		},
		{
			name: "invalid program section",
			opts: func(dir string) SupervisordOptions {
				return SupervisordOptions{Dir: dir, Programs: "[program:broken]\nautostart=true\n"}
			},
			wantErr: "supervisord exited during start-up",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := StartSupervisord(tc.opts(t.TempDir()))
			if errors.Is(err, ErrMissingTool) {
				SkipOrFail(t, err.Error())
			}
			if err == nil {
				_ = s.Stop()
				t.Fatal("StartSupervisord() succeeded")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error = %v, want it to contain %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "a\nb") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

func TestStartSupervisord_DropsToUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to change user")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	// t.TempDir's parent is private to root; nobody needs a path it can reach.
	dir, err := os.MkdirTemp("", "skiff-supervisord-user-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := supervisordTestStart(t, SupervisordOptions{Dir: dir, User: "nobody"})
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.PID()))
	if err != nil {
		t.Fatal(err)
	}
	var uid string
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" {
			uid = f[1]
		}
	}
	if want := u.Uid; uid != want {
		t.Errorf("supervisord runs as uid %s, want %s (nobody)", uid, want)
	}
	if _, err := strconv.Atoi(uid); err != nil {
		t.Errorf("no Uid line in /proc status: %q", status)
	}
}
