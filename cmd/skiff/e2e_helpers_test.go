package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/deploy"
	"github.com/skiffdeploy/skiff/internal/testenv"
	"github.com/skiffdeploy/skiff/release"
	"github.com/skiffdeploy/skiff/remote"
)

// The end-to-end tests run the whole CLI in-process (run) against real sshd hosts and real supervisords that
// internal/testenv starts on loopback. Hosts share this machine's file system and network, so every test gets
// an app of its own: its own path under the host's Root, its own supervisord and its own port.

func TestMain(m *testing.M) { testenv.Main(m) }

// e2eRunTimeout bounds one in-process skiff invocation.
const e2eRunTimeout = 90 * time.Second

// supervisorKind says how a test app's supervisord is reached, if it has one.
type supervisorKind int

const (
	supervisorUnix supervisorKind = iota // unix socket, no auth
	supervisorNone                       // no supervisord: ship and switch only
	supervisorTCP                        // http://127.0.0.1:PORT
)

// appOptions describe a test app beyond what every test app has.
type appOptions struct {
	supervisor supervisorKind
	// username and password protect supervisord; passwordEnv is the variable the inventory names.
	username, password, passwordEnv string
	// checkTimeout is the app's check.timeout (default 5s).
	checkTimeout string
	// extra is appended verbatim inside the [apps.NAME] table.
	extra string
	// path overrides the app's directory on the target (default Root/srv/NAME).
	path string
}

// e2eApp is one app deployed by a test: where it lives on the host, how its supervisord is reached, and the
// inventory that describes it.
type e2eApp struct {
	t    *testing.T
	env  *testenv.Env
	host *testenv.Host
	name string
	path string
	port int
	sv   *testenv.Supervisord
	inv  string
	conn *remote.Conn
	// lastDeploy is when the last deploy started: release ids have a resolution of one second.
	lastDeploy time.Time
}

// newE2EApp prepares an app named name on the shared host h1: a supervisord running the example app from
// <path>/current on a free port (unless opts says otherwise), and an inventory for it.
func newE2EApp(t *testing.T, name string, opts appOptions) *e2eApp {
	t.Helper()
	env := testenv.Shared(t)
	h := env.Hosts[0]
	a := &e2eApp{t: t, env: env, host: h, name: name, port: e2eFreePort(t), path: opts.path}
	if a.path == "" {
		a.path = filepath.Join(h.Root, "srv", name)
	}
	env.MkdirOwned(t, filepath.Dir(a.path))
	t.Cleanup(func() { os.RemoveAll(a.path) })

	var sup string
	if opts.supervisor != supervisorNone {
		a.sv = a.startSupervisord(opts)
		url := a.sv.URL
		if opts.supervisor == supervisorTCP {
			url = a.sv.InetURL
		}
		sup = fmt.Sprintf("supervisor.url = %s\nsupervisor.programs = [%s]\n", strconv.Quote(url), strconv.Quote(name))
		if opts.username != "" {
			sup += fmt.Sprintf("supervisor.username = %s\nsupervisor.password_env = %s\n", strconv.Quote(opts.username), strconv.Quote(opts.passwordEnv))
		}
		timeout := opts.checkTimeout
		if timeout == "" {
			timeout = "5s"
		}
		sup += fmt.Sprintf("check.ports = [%d]\ncheck.http = \"http://127.0.0.1:%d/health\"\ncheck.timeout = %q\n", a.port, a.port, timeout)
	}
	a.inv = env.WriteInventory(t, fmt.Sprintf("[apps.%s]\nhosts = [\"h1\"]\npath = %s\n%s%s\n",
		name, testenv.TOMLString(a.path), sup, opts.extra))
	return a
}

// startSupervisord starts the app's own supervisord with one program that runs the example app of the live
// release. It runs as the login user, like a per-user supervisord on a real host. A program that exits at
// once goes to BACKOFF within startsecs, and is not retried, so failures show quickly.
func (a *e2eApp) startSupervisord(opts appOptions) *testenv.Supervisord {
	t := a.t
	t.Helper()
	dir := filepath.Join(a.host.Root, "sv-"+a.name)
	a.env.MkdirOwned(t, dir)
	t.Cleanup(func() { os.RemoveAll(dir) })
	so := testenv.SupervisordOptions{
		Dir:      dir,
		Username: opts.username,
		Password: opts.password,
		User:     a.env.User,
		Programs: fmt.Sprintf(`[program:%[1]s]
command=/usr/bin/python3 %[2]s/current/server.py --port %[3]d
directory=%[2]s
autostart=false
startsecs=1
startretries=0
stopasgroup=true
killasgroup=true
stopwaitsecs=3
`, a.name, a.path, a.port),
	}
	if opts.supervisor == supervisorTCP {
		so.InetPort = -1
	}
	sv, err := testenv.StartSupervisord(so)
	if errors.Is(err, testenv.ErrMissingTool) {
		testenv.SkipOrFail(t, err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sv.Stop(); err != nil {
			t.Errorf("stop supervisord: %v", err)
		}
	})
	return sv
}

// e2eResult is what one skiff invocation produced.
type e2eResult struct {
	code           int
	stdout, stderr string
}

// all is stdout and stderr together, for searching.
func (r e2eResult) all() string { return r.stdout + r.stderr }

func (r e2eResult) String() string {
	return fmt.Sprintf("exit %d\n--- stdout ---\n%s--- stderr ---\n%s", r.code, r.stdout, r.stderr)
}

// skiff runs the CLI in-process with the app's inventory.
func (a *e2eApp) skiff(args ...string) e2eResult {
	a.t.Helper()
	return e2eSkiff(a.t, append([]string{"-i", a.inv}, args...)...)
}

// e2eSkiff runs the CLI in-process with exactly args (after the program name).
func e2eSkiff(t *testing.T, args ...string) e2eResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eRunTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, append([]string{"skiff"}, args...), strings.NewReader(""), &stdout, &stderr)
	return e2eResult{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// mustSkiff runs skiff and fails the test unless it exits with want.
func (a *e2eApp) mustSkiff(want int, args ...string) e2eResult {
	a.t.Helper()
	r := a.skiff(args...)
	if r.code != want {
		a.t.Fatalf("skiff %s: want exit %d, got %s", strings.Join(args, " "), want, r)
	}
	return r
}

// skiffJSON runs skiff with --json, checks the exit code and decodes the report of the one host.
func (a *e2eApp) skiffJSON(want int, args ...string) hostResult {
	a.t.Helper()
	r := a.mustSkiff(want, append([]string{"--json"}, args...)...)
	var rep report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		a.t.Fatalf("skiff %s: stdout is not one JSON report: %v\n%s", strings.Join(args, " "), err, r)
	}
	if rep.ExitCode != want || len(rep.Hosts) != 1 || rep.Hosts[0].Host != "h1" {
		a.t.Fatalf("skiff %s: unexpected report %+v\n%s", strings.Join(args, " "), rep, r)
	}
	h := rep.Hosts[0]
	if h.Outcome == nil {
		h.Outcome = &deploy.Outcome{}
	}
	return *h
}

// deploy deploys tree and returns the host's result; want is the expected exit code.
func (a *e2eApp) deploy(want int, tree string, extra ...string) hostResult {
	a.t.Helper()
	if now := time.Now(); now.Unix() == a.lastDeploy.Unix() {
		time.Sleep(now.Truncate(time.Second).Add(time.Second).Sub(now))
	}
	a.lastDeploy = time.Now()
	return a.skiffJSON(want, append([]string{"deploy", a.name, "--source", tree}, extra...)...)
}

// current is the id the app's current link names, read on the host's file system ("" when there is none).
func (a *e2eApp) current() string {
	a.t.Helper()
	target, err := os.Readlink(filepath.Join(a.path, "current"))
	if errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	if err != nil {
		a.t.Fatal(err)
	}
	return filepath.Base(target)
}

// releases lists the release directories on the host (not the trash that retention deletes in the background).
func (a *e2eApp) releases() []string {
	a.t.Helper()
	entries, err := os.ReadDir(filepath.Join(a.path, "releases"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		a.t.Fatal(err)
	}
	var ids []string
	for _, e := range entries {
		if release.ValidReleaseID(e.Name()) {
			ids = append(ids, e.Name())
		}
	}
	return ids
}

// history reads the app's history through `skiff releases --json`.
func (a *e2eApp) history() ([]release.HistoryEntry, []releaseInfo) {
	a.t.Helper()
	h := a.skiffJSON(0, "releases", a.name)
	return h.History, h.Releases
}

// remoteConn is an SSH connection of the test's own to the app's host, for looking at it from inside.
func (a *e2eApp) remoteConn() *remote.Conn {
	a.t.Helper()
	if a.conn != nil {
		return a.conn
	}
	pool := remote.NewPool(remote.Options{})
	a.t.Cleanup(func() { pool.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := pool.Get(ctx, &remote.Target{Name: a.host.Name, Address: a.host.IP, Port: a.host.Port, User: a.env.User,
		IdentityFiles: []string{a.env.KeyFile}, KnownHosts: a.env.KnownHosts})
	if err != nil {
		a.t.Fatal(err)
	}
	a.conn = c
	return c
}

// get fetches path from the app with an HTTP GET made from the target (through the SSH connection).
func (a *e2eApp) get(path string) (string, error) {
	a.t.Helper()
	c := a.remoteConn()
	client := &http.Client{
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return c.Dial(ctx, "tcp", addr)
		}, DisableKeepAlives: true},
		Timeout: 5 * time.Second,
	}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d%s", a.port, path))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return strings.TrimSpace(string(body)), nil
}

// wantServing fails the test unless the app answers GET / with the given VERSION.
func (a *e2eApp) wantServing(version string) {
	a.t.Helper()
	got, err := a.get("/")
	if want := "hello from skiff demo " + version; err != nil || got != want {
		a.t.Fatalf("GET / through the target = %q, %v; want %q", got, err, want)
	}
}

// e2eAppTree writes a copy of examples/app with the given VERSION into a fresh directory and returns it.
// edit, when set, changes the tree further.
func e2eAppTree(t *testing.T, version string, edit func(dir string)) string {
	t.Helper()
	dir := t.TempDir()
	server, err := os.ReadFile(filepath.Join("..", "..", "examples", "app", "server.py"))
	if err != nil {
		t.Fatal(err)
	}
	e2eWrite(t, filepath.Join(dir, "server.py"), string(server))
	e2eWrite(t, filepath.Join(dir, "VERSION"), version+"\n")
	if edit != nil {
		edit(dir)
	}
	return dir
}

// e2eWrite writes a file (and its parent directories) or fails the test.
func e2eWrite(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// e2eFreePort asks the kernel for a loopback port that is free right now.
func e2eFreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// e2eSnapshot describes every entry under root (type, mode, content hash or link target), so that a test can
// prove that nothing changed. A missing root is the empty snapshot.
func e2eSnapshot(t testing.TB, root string) map[string]string {
	t.Helper()
	snap := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == root {
			return filepath.SkipAll
		}
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			snap[rel] = "link " + target
		case d.IsDir():
			snap[rel] = fmt.Sprintf("dir %v", info.Mode())
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			snap[rel] = fmt.Sprintf("file %v %s", info.Mode(), hex.EncodeToString(sum[:]))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// e2eDiff lists the differences between two snapshots, for failure messages.
func e2eDiff(before, after map[string]string) []string {
	var diff []string
	for k, v := range before {
		if w, ok := after[k]; !ok {
			diff = append(diff, "removed "+k)
		} else if w != v {
			diff = append(diff, fmt.Sprintf("changed %s: %s -> %s", k, v, w))
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			diff = append(diff, "added "+k)
		}
	}
	return diff
}
