package testenv

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// SupervisordBinary is where Debian's supervisor package installs supervisord.
const SupervisordBinary = "/usr/bin/supervisord"

// supervisordStartTimeout bounds how long StartSupervisord waits for
// getState to answer, and supervisordStopTimeout how long Stop lets
// supervisord shut its programs down before killing everything.
const (
	supervisordStartTimeout = 15 * time.Second
	supervisordStopTimeout  = 10 * time.Second
)

// SupervisordOptions describes a supervisord to start for a test.
type SupervisordOptions struct {
	// Dir holds the configuration, pid file, logs and (by default) the
	// socket. It must exist; tests pass t.TempDir().
	Dir string
	// Socket is the unix socket path; empty means Dir/supervisor.sock.
	Socket string
	// InetPort adds an [inet_http_server] on 127.0.0.1:InetPort. 0 means
	// none; a negative value picks a free port.
	InetPort int
	// Username and Password protect both servers when Username is set. The
	// configuration file stores only the password's SHA-1 ({SHA} form).
	Username, Password string
	// Programs is appended to the configuration verbatim: [program:x] and
	// [group:x] sections.
	Programs string
	// User makes supervisord drop privileges to this unix user when started
	// as root; Dir is handed to that user.
	User string
	// Exec is an optional argv prefix supervisord is started under, such as
	// ip netns exec NS. Every element must exec the next (no fork), so that
	// Stop can find the process tree. InetURL is then only reachable from
	// inside that namespace.
	Exec []string
}

// Supervisord is a running supervisord started by StartSupervisord.
type Supervisord struct {
	// Dir, Socket and Config are the directory, unix socket and
	// configuration file paths.
	Dir, Socket, Config string
	// URL is the unix socket URL ("unix:///…/supervisor.sock").
	URL string
	// InetURL is "http://127.0.0.1:PORT" when an inet server was asked for.
	InetURL string

	cmd      *exec.Cmd
	done     chan struct{} // closed when the process has been waited for
	stopOnce sync.Once
}

// StartSupervisord writes a configuration into opts.Dir, runs
// "supervisord -n -c conf" in its own session, and returns once getState
// answers over the unix socket. Call Stop (for example in t.Cleanup) to end
// it and every process it started.
func StartSupervisord(opts SupervisordOptions) (*Supervisord, error) {
	if _, err := os.Stat(SupervisordBinary); err != nil {
		return nil, fmt.Errorf("%w: %s (apt-get install supervisor)", ErrMissingTool, SupervisordBinary)
	}
	conf, err := SupervisordWriteConfig(&opts)
	if err != nil {
		return nil, err
	}
	out, err := os.OpenFile(filepath.Join(opts.Dir, "supervisord.out"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("supervisord output file: %w", err)
	}
	defer out.Close()

	argv := append(append([]string{}, opts.Exec...), SupervisordBinary, "-n", "-c", conf)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = opts.Dir
	cmd.Stdout, cmd.Stderr = out, out
	// A session of its own lets Stop find supervisord's programs even after
	// supervisord is gone: they change process group but keep the session.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start supervisord: %w", err)
	}
	s := &Supervisord{
		Dir:    opts.Dir,
		Socket: opts.Socket,
		Config: conf,
		URL:    "unix://" + opts.Socket,
		cmd:    cmd,
		done:   make(chan struct{}),
	}
	if opts.InetPort > 0 {
		s.InetURL = "http://127.0.0.1:" + strconv.Itoa(opts.InetPort)
	}
	go func() {
		_ = cmd.Wait() // the exit status of a test supervisord carries no information Stop needs
		close(s.done)
	}()
	if err := s.waitReady(opts.Username, opts.Password); err != nil {
		_ = s.Stop()
		return nil, fmt.Errorf("supervisord in %s: %w\n%s", opts.Dir, err, s.Log())
	}
	return s, nil
}

// SupervisordWriteConfig fills in opts' defaults (Socket, a free InetPort)
// and writes Dir/supervisord.conf, returning its path. It is exported for
// tests that start supervisord themselves, for instance from a shell that
// also starts sshd inside a namespace.
func SupervisordWriteConfig(opts *SupervisordOptions) (string, error) {
	if opts.Dir == "" {
		return "", errors.New("supervisord: Dir is required")
	}
	if opts.Socket == "" {
		opts.Socket = filepath.Join(opts.Dir, "supervisor.sock")
	}
	// sun_path is 108 bytes including the terminating NUL.
	if len(opts.Socket) > 107 {
		return "", fmt.Errorf("supervisord: socket path %s is longer than 107 bytes", opts.Socket)
	}
	if opts.InetPort < 0 {
		port, err := supervisordFreePort()
		if err != nil {
			return "", err
		}
		opts.InetPort = port
	}
	if strings.ContainsAny(opts.Username, "%:\r\n") || strings.ContainsAny(opts.Password, "\r\n") {
		return "", errors.New("supervisord: username must not contain % : or newlines, password no newlines")
	}
	if opts.User != "" && os.Geteuid() == 0 {
		if err := supervisordChown(opts.Dir, opts.User); err != nil {
			return "", err
		}
	}

	var auth string
	if opts.Username != "" {
		sum := sha1.Sum([]byte(opts.Password))
		auth = fmt.Sprintf("username=%s\npassword={SHA}%s\n", opts.Username, hex.EncodeToString(sum[:]))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "[unix_http_server]\nfile=%s\nchmod=0700\n%s\n", opts.Socket, auth)
	if opts.InetPort > 0 {
		fmt.Fprintf(&b, "[inet_http_server]\nport=127.0.0.1:%d\n%s\n", opts.InetPort, auth)
	}
	fmt.Fprintf(&b, "[supervisord]\nlogfile=%[1]s/supervisord.log\npidfile=%[1]s/supervisord.pid\nchildlogdir=%[1]s\nloglevel=info\n",
		opts.Dir)
	if opts.User != "" && os.Geteuid() == 0 {
		fmt.Fprintf(&b, "user=%s\n", opts.User)
	}
	b.WriteString("\n[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n")
	b.WriteString(opts.Programs)
	b.WriteString("\n")

	conf := filepath.Join(opts.Dir, "supervisord.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o600); err != nil {
		return "", fmt.Errorf("supervisord: write config: %w", err)
	}
	return conf, nil
}

// supervisordChown hands dir to the named user so a supervisord that drops
// privileges can write its log, pid file and socket there.
func supervisordChown(dir, name string) error {
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("supervisord: user %s: %w", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return fmt.Errorf("supervisord: chown %s: %w", dir, err)
	}
	return nil
}

// supervisordFreePort asks the kernel for a free loopback TCP port. Another
// process may take it before supervisord binds it; tests accept that.
func supervisordFreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("supervisord: find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls supervisor.getState over the unix socket until it
// answers, supervisord exits, or the start timeout passes.
func (s *Supervisord) waitReady(username, password string) error {
	ctx, cancel := context.WithTimeout(context.Background(), supervisordStartTimeout)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", s.Socket)
		},
		DisableKeepAlives: true,
	}}
	body := []byte(`<?xml version="1.0"?><methodCall><methodName>supervisor.getState</methodName></methodCall>`)
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://localhost/RPC2", bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "text/xml")
		if username != "" {
			req.SetBasicAuth(username, password)
		}
		resp, err := client.Do(req)
		if err == nil {
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusOK && bytes.Contains(data, []byte("RUNNING")):
				return nil
			case resp.StatusCode == http.StatusUnauthorized:
				return errors.New("getState: authentication failed (401)")
			}
			last = fmt.Errorf("getState: HTTP %s", resp.Status)
		} else {
			last = err
		}
		select {
		case <-s.done:
			return errors.New("supervisord exited during start-up")
		case <-ctx.Done():
			return fmt.Errorf("not ready after %s: %w", supervisordStartTimeout, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// PID returns supervisord's process id.
func (s *Supervisord) PID() int { return s.cmd.Process.Pid }

// Log returns supervisord's own output and log file, for failure messages.
func (s *Supervisord) Log() string {
	var b strings.Builder
	for _, name := range []string{"supervisord.out", "supervisord.log"} {
		if data, err := os.ReadFile(filepath.Join(s.Dir, name)); err == nil && len(data) > 0 {
			fmt.Fprintf(&b, "--- %s ---\n%s", name, data)
		}
	}
	return b.String()
}

// Stop kills supervisord and then every process left in its session (its
// programs and anything they started), with SIGKILL: tests need no graceful
// shutdown, and supervisord's own takes seconds. It is safe to call more than
// once.
func (s *Supervisord) Stop() error {
	var err error
	s.stopOnce.Do(func() {
		sid := s.cmd.Process.Pid
		_ = syscall.Kill(sid, syscall.SIGKILL)
		<-s.done
		err = supervisordKillSession(sid)
	})
	return err
}

// supervisordKillSession sends SIGKILL to every live process of session sid
// until none is left; a process may fork while the session is being swept.
func supervisordKillSession(sid int) error {
	var left []int
	for attempt := 0; attempt < 100; attempt++ {
		left = supervisordSessionMembers(sid)
		if len(left) == 0 {
			return nil
		}
		for _, pid := range left {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("supervisord: processes %v of session %d survive SIGKILL", left, sid)
}

// supervisordSessionMembers lists the processes of session sid that are not
// zombies (a zombie is dead already; its parent or init reaps it).
func supervisordSessionMembers(sid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if state, s, ok := supervisordStat(pid); ok && s == sid && state != "Z" && state != "X" {
			pids = append(pids, pid)
		}
	}
	return pids
}

// supervisordStat reads the state and session id of pid from /proc/PID/stat.
func supervisordStat(pid int) (state string, sid int, ok bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0, false
	}
	// The command name is in parentheses and may contain spaces; the fields
	// after it are: state ppid pgrp session.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return "", 0, false
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 4 {
		return "", 0, false
	}
	sid, err = strconv.Atoi(fields[3])
	return fields[0], sid, err == nil
}
