package supervisor_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/internal/testenv"
	"github.com/skiffdeploy/skiff/supervisor"
)

// localDialer reaches supervisord directly; skiff passes an SSH connection
// instead, which is why the client only knows the Dialer interface.
var localDialer = supervisor.DialerFunc((&net.Dialer{}).DialContext)

// programs is the supervisord configuration shared by the integration tests.
const programs = `
[program:api]
command=/bin/sleep 1000
startsecs=0

[program:idle]
command=/bin/sleep 1000
startsecs=0
autostart=false

[program:a]
command=/bin/sleep 1000
startsecs=0

[program:b]
command=/bin/sleep 1000
startsecs=0

[group:web]
programs=a,b

[program:worker]
command=/bin/sleep 1000
process_name=%(program_name)s_%(process_num)d
numprocs=2
startsecs=0

[program:boom]
command=/bin/sh -c "echo starting; echo boom >&2; exit 1"
startsecs=1
startretries=0
autostart=false

[program:colour]
command=/bin/sh -c "printf '\\033[31mred alert\\033[0m\\n' >&2; exit 3"
redirect_stderr=true
startsecs=1
startretries=0
autostart=false

[program:missing]
command=/nonexistent/bin/app
autostart=false

[program:settle]
command=/bin/sleep 1000
startsecs=1
autostart=false

[program:chatty]
command=/bin/sh -c "i=0; while [ $i -lt 50 ]; do echo line$i >&2; i=$((i+1)); done; exec /bin/sleep 1000"
startsecs=0
`

// startSupervisord starts a real supervisord for t and stops it when t ends.
func startSupervisord(t *testing.T, opts testenv.SupervisordOptions) *testenv.Supervisord {
	t.Helper()
	opts.Dir = t.TempDir()
	if opts.Programs == "" {
		opts.Programs = programs
	}
	s, err := testenv.StartSupervisord(opts)
	if errors.Is(err, testenv.ErrMissingTool) {
		testenv.SkipOrFail(t, err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop supervisord: %v", err)
		}
	})
	return s
}

func newClient(t *testing.T, url string, opts supervisor.Options) *supervisor.Client {
	t.Helper()
	if opts.PollInterval == 0 {
		opts.PollInterval = 20 * time.Millisecond
	}
	c, err := supervisor.New(localDialer, url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestClient_TransportsAndAuth(t *testing.T) {
	const user, password = "skiff", "pa55-w0rd-XyZ"
	s := startSupervisord(t, testenv.SupervisordOptions{InetPort: -1, Username: user, Password: password, Programs: "\n"})
	tests := []struct {
		name     string
		url      string
		opts     supervisor.Options
		wantAuth bool // want ErrAuthFailed
	}{
		{name: "unix socket", url: s.URL, opts: supervisor.Options{Username: user, Password: password}},
		{name: "tcp", url: s.InetURL, opts: supervisor.Options{Username: user, Password: password}},
		{name: "unix socket wrong password", url: s.URL, opts: supervisor.Options{Username: user, Password: "wrong-" + password}, wantAuth: true},
		{name: "tcp wrong password", url: s.InetURL, opts: supervisor.Options{Username: user, Password: "wrong-" + password}, wantAuth: true},
		{name: "tcp no credentials", url: s.InetURL, wantAuth: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			c := newClient(t, tc.url, tc.opts)
			state, err := c.State(ctx)
			if tc.wantAuth {
				if !errors.Is(err, supervisor.ErrAuthFailed) {
					t.Fatalf("State() error = %v, want ErrAuthFailed", err)
				}
				want := "supervisord at " + tc.url + ": getState: authentication failed (401)"
				if err.Error() != want {
					t.Errorf("error = %q, want %q", err, want)
				}
				if strings.Contains(err.Error(), password) {
					t.Errorf("error %q shows the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if state != "RUNNING" {
				t.Errorf("State() = %q, want RUNNING", state)
			}
			version, err := c.Version(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(version, ".") {
				t.Errorf("Version() = %q, want a dotted version", version)
			}
		})
	}
}

func TestClient_ProcessesByGroupName(t *testing.T) {
	s := startSupervisord(t, testenv.SupervisordOptions{})
	ctx := testContext(t)
	c := newClient(t, s.URL, supervisor.Options{})

	procs, err := c.Processes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]supervisor.ProcessInfo{}
	for _, p := range procs {
		got[p.FullName()] = p
	}
	for _, name := range []string{"api:api", "web:a", "web:b", "worker:worker_0", "worker:worker_1", "idle:idle", "boom:boom"} {
		if _, ok := got[name]; !ok {
			t.Errorf("Processes() lacks %s; has %v", name, got)
		}
	}
	if p := got["idle:idle"]; p.State != supervisor.StateStopped || p.PID != 0 || !p.Start.IsZero() {
		t.Errorf("idle:idle = %+v, want STOPPED, pid 0, zero start time", p)
	}

	info, err := c.Process(ctx, "web:a")
	if err != nil {
		t.Fatal(err)
	}
	if info.Group != "web" || info.Name != "a" || info.State != supervisor.StateRunning || info.PID <= 0 || info.Start.IsZero() {
		t.Errorf("Process(web:a) = %+v, want group web, RUNNING with a pid", info)
	}

	tests := []struct {
		name     string
		patterns []string
		want     string
	}{
		{name: "group star", patterns: []string{"web:*"}, want: "web:a web:b"},
		{name: "program", patterns: []string{"api"}, want: "api:api"},
		{name: "numprocs", patterns: []string{"worker"}, want: "worker:worker_0 worker:worker_1"},
		{name: "member of a group by name", patterns: []string{"b"}, want: "web:b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			names, err := c.Resolve(ctx, tc.patterns)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(names, " "); got != tc.want {
				t.Errorf("Resolve(%v) = %q, want %q", tc.patterns, got, tc.want)
			}
		})
	}

	_, err = c.Resolve(ctx, []string{"nope"})
	if !errors.Is(err, supervisor.ErrNoMatch) || !strings.Contains(err.Error(), "api:api, boom:boom") {
		t.Errorf("Resolve(nope) error = %v, want ErrNoMatch listing the programs", err)
	}
}

func TestClient_Faults(t *testing.T) {
	s := startSupervisord(t, testenv.SupervisordOptions{})
	ctx := testContext(t)
	c := newClient(t, s.URL, supervisor.Options{})
	tests := []struct {
		name string
		call func() error
		code int
	}{
		{name: "unknown process", call: func() error { _, err := c.Process(ctx, "nope:nope"); return err }, code: supervisor.FaultBadName},
		{name: "stop a stopped program", call: func() error { return c.Stop(ctx, "idle:idle", true) }, code: supervisor.FaultNotRunning},
		{name: "start a running program", call: func() error { return c.Start(ctx, "api:api", true) }, code: supervisor.FaultAlreadyStarted},
		{name: "unknown signal", call: func() error { return c.Signal(ctx, "api:api", "NOPE") }, code: supervisor.FaultBadSignal},
		{name: "missing executable", call: func() error { return c.Start(ctx, "missing:missing", true) }, code: supervisor.FaultNoFile},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !supervisor.IsFault(err, tc.code) {
				t.Fatalf("error = %v, want fault code %d", err, tc.code)
			}
			var f supervisor.Fault
			if !errors.As(err, &f) || f.Code != tc.code {
				t.Errorf("errors.As(Fault) = %+v, want code %d", f, tc.code)
			}
			if !strings.HasPrefix(err.Error(), "supervisord at "+s.URL+": ") {
				t.Errorf("error %q does not name the supervisord", err)
			}
		})
	}
	if err := c.Signal(ctx, "api:api", "CONT"); err != nil {
		t.Errorf("Signal(api:api, CONT) = %v", err)
	}
}

func TestClient_StopStartWait(t *testing.T) {
	s := startSupervisord(t, testenv.SupervisordOptions{})
	ctx := testContext(t)
	c := newClient(t, s.URL, supervisor.Options{})
	steps := []struct {
		name string
		do   func() error
		want supervisor.State
	}{
		{name: "stop", do: func() error { return c.Stop(ctx, "web:b", true) }, want: supervisor.StateStopped},
		{name: "start", do: func() error { return c.Start(ctx, "web:b", true) }, want: supervisor.StateRunning},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if err := st.do(); err != nil {
				t.Fatal(err)
			}
			info, err := c.Process(ctx, "web:b")
			if err != nil {
				t.Fatal(err)
			}
			if info.State != st.want {
				t.Errorf("state after %s = %s, want %s", st.name, info.State, st.want)
			}
		})
	}
}

func TestClient_RestartReportsNewPIDs(t *testing.T) {
	s := startSupervisord(t, testenv.SupervisordOptions{})
	ctx := testContext(t)
	c := newClient(t, s.URL, supervisor.Options{})

	got, err := c.Restart(ctx, []string{"web:*", "api", "idle"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range got {
		names = append(names, r.Name)
		if r.NewPID <= 0 || r.NewPID == r.OldPID {
			t.Errorf("%s: old pid %d, new pid %d; want a new pid", r.Name, r.OldPID, r.NewPID)
		}
		info, err := c.Process(ctx, r.Name)
		if err != nil {
			t.Fatal(err)
		}
		if info.State != supervisor.StateRunning || info.PID != r.NewPID {
			t.Errorf("%s after restart: %s pid %d, want RUNNING pid %d", r.Name, info.State, info.PID, r.NewPID)
		}
	}
	if want := "api:api idle:idle web:a web:b"; strings.Join(names, " ") != want {
		t.Errorf("restarted %v, want %s", names, want)
	}
	for _, r := range got {
		if r.Name == "idle:idle" && r.OldPID != 0 {
			t.Errorf("idle:idle was stopped, OldPID = %d, want 0", r.OldPID)
		}
		if r.Name != "idle:idle" && r.OldPID <= 0 {
			t.Errorf("%s was running, OldPID = %d", r.Name, r.OldPID)
		}
	}
}

// countingDialer counts the getProcessInfo calls that go through it.
type countingDialer struct{ polls atomic.Int64 }

func (d *countingDialer) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := localDialer(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return countingConn{Conn: c, d: d}, nil
}

type countingConn struct {
	net.Conn
	d *countingDialer
}

func (c countingConn) Write(p []byte) (int, error) {
	c.d.polls.Add(int64(strings.Count(string(p), "<methodName>supervisor.getProcessInfo</methodName>")))
	return c.Conn.Write(p)
}

func TestClient_RestartPollsSparselyUntilStartsecs(t *testing.T) {
	s := startSupervisord(t, testenv.SupervisordOptions{})
	ctx := testContext(t)
	d := &countingDialer{}
	c, err := supervisor.New(supervisor.DialerFunc(d.Dial), s.URL, supervisor.Options{PollInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	got, err := c.Restart(ctx, []string{"settle"})
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Process(ctx, "settle")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || info.State != supervisor.StateRunning || got[0].NewPID != info.PID {
		t.Fatalf("restart gave %+v, then %s pid %d; want the running pid", got, info.State, info.PID)
	}
	// One second of STARTING polled every 100 ms would be ten polls; sparse until startsecs, quick after.
	if n := d.polls.Load() - 1; n > 6 {
		t.Errorf("restart polled getProcessInfo %d times over one second of startsecs, want at most 6", n)
	}
}

func TestClient_RestartFailureShowsLog(t *testing.T) {
	s := startSupervisord(t, testenv.SupervisordOptions{})
	ctx := testContext(t)
	c := newClient(t, s.URL, supervisor.Options{})
	tests := []struct {
		name     string
		patterns []string
		program  string
		want     []string // in the error text
		notInLog string
	}{
		{
			name:     "stderr log",
			patterns: []string{"boom", "web:a"},
			program:  "boom:boom",
			want:     []string{"boom:boom did not start", "Exited too quickly", "last lines of its log:\nboom"},
			notInLog: "starting", // boom's stdout
		},
		{
			name:     "stderr redirected to stdout, with colour codes",
			patterns: []string{"colour"},
			program:  "colour:colour",
			want:     []string{"colour:colour did not start", "last lines of its log:\n\uFFFD[31mred alert\uFFFD[0m"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			done, err := c.Restart(ctx, tc.patterns)
			if err == nil {
				t.Fatalf("Restart(%v) succeeded", tc.patterns)
			}
			var se *supervisor.StartError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a StartError", err)
			}
			if se.Name != tc.program || (se.State != supervisor.StateBackoff && se.State != supervisor.StateFatal) {
				t.Errorf("StartError = %+v, want %s in BACKOFF or FATAL", se, tc.program)
			}
			for _, want := range append(tc.want, string(se.State)) {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			if tc.notInLog != "" && strings.Contains(se.LogTail, tc.notInLog) {
				t.Errorf("log tail %q shows %q", se.LogTail, tc.notInLog)
			}
			// The failing program sorts first; nothing after it is touched.
			if len(done) != 0 {
				t.Errorf("restarted %v before the failure, want none", done)
			}
		})
	}
}

func TestClient_TailStderr(t *testing.T) {
	s := startSupervisord(t, testenv.SupervisordOptions{})
	ctx := testContext(t)
	c := newClient(t, s.URL, supervisor.Options{})

	// The program writes its 50 lines right after it starts; wait for them.
	var tail string
	for !strings.HasSuffix(tail, "line49") {
		var err error
		if tail, err = c.TailStderr(ctx, "chatty", 3); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("stderr never reached line49; last tail %q", tail)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if tail != "line47\nline48\nline49" {
		t.Errorf("TailStderr(chatty, 3) = %q", tail)
	}
}
