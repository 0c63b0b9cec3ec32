package deploy

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"github.com/skiffdeploy/skiff/inventory"
	"github.com/skiffdeploy/skiff/release"
	"github.com/skiffdeploy/skiff/remote"
)

// fakeConn is a HostConn that records the commands it runs, reads their stdin and answers with stdout.
type fakeConn struct {
	ran    []string
	stdin  []string
	stdout string
}

func (f *fakeConn) Run(_ context.Context, cmd remote.Command) (*remote.Result, error) {
	f.ran = append(f.ran, cmd.String())
	if cmd.Stdin != nil {
		data, _ := io.ReadAll(cmd.Stdin)
		f.stdin = append(f.stdin, string(data))
	}
	return &remote.Result{Stdout: []byte(f.stdout)}, nil
}

func (f *fakeConn) SFTP(context.Context) (*sftp.Client, error) { return nil, errors.New("no sftp") }

func (f *fakeConn) Dial(context.Context, string, string) (net.Conn, error) {
	return nil, errors.New("no dial")
}

func (f *fakeConn) WaitPort(context.Context, string, string, time.Duration) error { return nil }

// countingConn is a fakeConn that counts, as *remote.Conn does.
type countingConn struct{ fakeConn }

func (c *countingConn) Counts() remote.Counts { return remote.Counts{Commands: 7, SFTPStarts: 1} }

func TestDryConn_RunsReadOnlyRendersTheRest(t *testing.T) {
	const secret = "s3cret-password"
	for _, tc := range []struct {
		name    string
		cmd     remote.Command
		ran     bool   // the wrapped connection ran it
		log     string // the line logged instead
		wantErr bool
	}{
		{"read-only runs", remote.Command{Argv: []string{"cat", "/srv/app/.skiff/history.jsonl"}, ReadOnly: true}, true, "", false},
		{"a change is rendered", remote.Script(`rm -rf "$1"`, "/srv/app/releases/x"), false,
			`would run: sh -c 'rm -rf "$1"' skiff /srv/app/releases/x`, false},
		{"stdin is neither read nor shown", remote.Command{Argv: []string{"docker", "login", "--password-stdin"}, Stdin: strings.NewReader(secret)}, false,
			"would run: docker login --password-stdin  (with input on stdin, not shown)", false},
		{"read-only with stdin runs", remote.Command{Argv: []string{"docker", "version"}, Stdin: strings.NewReader("x"), ReadOnly: true}, true, "", false},
		{"a command a real run refuses is refused", remote.Command{Argv: []string{"true"}, Env: []string{"BAD NAME=1"}}, false, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := &fakeConn{stdout: "out\n"}
			var logs []string
			c := forRun(fake, "h1", &Options{DryRun: true, Log: func(host, line string) { logs = append(logs, host+" | "+line) }})
			res, err := c.Run(context.Background(), tc.cmd)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if ran := len(fake.ran) > 0; ran != tc.ran {
				t.Fatalf("ran %v, want %v", fake.ran, tc.ran)
			}
			switch {
			case tc.ran:
				if string(res.Stdout) != "out\n" || len(logs) != 0 {
					t.Errorf("read-only command: stdout %q, logs %q; want its output and nothing logged", res.Stdout, logs)
				}
			case !tc.wantErr:
				if res == nil || len(res.Stdout) != 0 || strings.Join(logs, "\n") != "h1 | "+tc.log {
					t.Errorf("rendered: result %+v, logs %q; want an empty result and %q", res, logs, tc.log)
				}
			}
			if strings.Contains(strings.Join(logs, "\n"), secret) || (!tc.ran && len(fake.stdin) > 0) {
				t.Errorf("stdin leaked: logs %q, read %q", logs, fake.stdin)
			}
		})
	}
}

func TestForRun_InstallsDryConnOnlyInADryRun(t *testing.T) {
	fake := &fakeConn{}
	if c := forRun(fake, "h1", &Options{}); c != HostConn(fake) || isDry(c) {
		t.Errorf("a real run's connection is %T, want the connection itself", c)
	}
	if c := forRun(fake, "h1", &Options{DryRun: true}); !isDry(c) {
		t.Errorf("a dry run's connection is %T, want a dry one", c)
	} else if _, counts := c.(remoteCounter); counts {
		t.Errorf("a dry connection over one that does not count claims to count")
	}
	c := forRun(&countingConn{}, "h1", &Options{DryRun: true})
	if rc, ok := c.(remoteCounter); !isDry(c) || !ok || rc.Counts().Commands != 7 {
		t.Errorf("a dry run over a counting connection: %T, want a dry one passing the counts through", c)
	}
}

func TestHostRunChange_DryRunLogsThePlan(t *testing.T) {
	for _, dry := range []bool{false, true} {
		var logs []string
		app := &inventory.App{Name: "api", Path: "/srv/api"}
		r := newHostRun(&fakeConn{}, app, "h1", &Options{DryRun: dry, Log: func(_, line string) { logs = append(logs, line) }})
		ran := false
		err := r.change("env", "write the env file", func() error { ran = true; return errors.New("boom") })
		if dry {
			if err != nil || ran || strings.Join(logs, "\n") != "would write the env file" || len(r.out.Steps) != 0 {
				t.Errorf("dry run: err %v, ran %v, logs %q, steps %v; want the plan logged, nothing run", err, ran, logs, r.out.Steps)
			}
			continue
		}
		if err == nil || err.Error() != "env: boom" || !ran || len(logs) != 0 || len(r.out.Steps) != 1 {
			t.Errorf("real run: err %v, ran %v, logs %q, steps %v; want the step run and named", err, ran, logs, r.out.Steps)
		}
	}
}

func TestLockApp_DryRunInspectsTheLock(t *testing.T) {
	app := &inventory.App{Name: "api", Path: "/srv/api", Timeout: inventory.Duration{Duration: time.Minute}}
	for _, tc := range []struct {
		name, stdout string
		held         bool
	}{
		{"free", "", false},
		{"held", `{"operator":"other","op":"deploy","app":"api","since":"2026-01-01T00:00:00Z"}` + "\nheld\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := &fakeConn{stdout: tc.stdout}
			var logs []string
			c := forRun(fake, "h1", &Options{DryRun: true, Log: func(_, line string) { logs = append(logs, line) }})
			lk, err := lockApp(context.Background(), c, &Options{DryRun: true}, app, "deploy")
			var le *release.LockedError
			if lk != nil || errors.As(err, &le) != tc.held || (!tc.held && err != nil) {
				t.Fatalf("lock %v, err %v; want none taken, held %v", lk, err, tc.held)
			}
			if tc.held && (le.Owner == nil || le.Owner.Operator != "other") {
				t.Errorf("held by %+v, want other", le.Owner)
			}
			if len(fake.ran) != 1 || strings.Contains(fake.ran[0], "mkdir") || len(logs) != 0 {
				t.Errorf("ran %q, logged %q; want only the lock's inspection", fake.ran, logs)
			}
		})
	}
}
