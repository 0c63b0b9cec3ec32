package remote

import (
	"errors"
	"strings"
	"testing"
	"testing/iotest"
)

func TestCommand_String(t *testing.T) {
	for _, tc := range []struct {
		name string
		cmd  Command
		want string
	}{
		{name: "argv", cmd: Command{Argv: []string{"ls", "-la"}}, want: "ls -la"},
		{name: "argv quoted", cmd: Command{Argv: []string{"echo", "it's", "a b"}}, want: `echo 'it'\''s' 'a b'`},
		{name: "dir", cmd: Command{Dir: "/srv/api/releases/1", Argv: []string{"ls"}}, want: "cd /srv/api/releases/1 && ls"},
		{name: "dir quoted", cmd: Command{Dir: "/srv/my app", Argv: []string{"ls"}}, want: "cd '/srv/my app' && ls"},
		{name: "env", cmd: Command{Env: []string{"A=1", "B=x y", "C="}, Argv: []string{"env"}}, want: "A=1 B='x y' C='' env"},
		{name: "env value with equals", cmd: Command{Env: []string{"OPTS=a=b"}, Argv: []string{"run"}}, want: "OPTS=a=b run"},
		{name: "script", cmd: Command{Script: "echo hi; exit 3"}, want: "sh -c 'echo hi; exit 3'"},
		{name: "script with quotes", cmd: Command{Script: "echo 'x'"}, want: `sh -c 'echo '\''x'\'''`},
		{
			name: "everything",
			cmd:  Command{Dir: "/srv/api/releases/2", Env: []string{"RELEASE=2"}, Script: "pip install -r requirements.txt"},
			want: "cd /srv/api/releases/2 && RELEASE=2 sh -c 'pip install -r requirements.txt'",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.cmd.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCommand_Validate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cmd     Command
		wantErr string
	}{
		{name: "argv", cmd: Command{Argv: []string{"true"}}},
		{name: "script", cmd: Command{Script: "true"}},
		{name: "nothing", cmd: Command{}, wantErr: "neither"},
		{name: "both", cmd: Command{Argv: []string{"true"}, Script: "true"}, wantErr: "exclusive"},
		{name: "empty program", cmd: Command{Argv: []string{""}}, wantErr: "empty program"},
		{name: "env without equals", cmd: Command{Env: []string{"A"}, Argv: []string{"true"}}, wantErr: "invalid environment"},
		{name: "env bad name", cmd: Command{Env: []string{"1A=x"}, Argv: []string{"true"}}, wantErr: "invalid environment"},
		{name: "env injection", cmd: Command{Env: []string{"A;rm -rf /=x"}, Argv: []string{"true"}}, wantErr: "invalid environment"},
		{name: "env value hidden", cmd: Command{Env: []string{"A B=secret"}, Argv: []string{"true"}}, wantErr: "'A B'"},
		{name: "nul in argv", cmd: Command{Argv: []string{"echo", "a\x00b"}}, wantErr: "NUL"},
		{name: "dir with dash", cmd: Command{Dir: "-P", Argv: []string{"true"}}, wantErr: "starts with '-'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cmd.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Validate = %v, want error containing %q", err, tc.wantErr)
			case err != nil && strings.Contains(err.Error(), "secret"):
				t.Fatalf("error %q shows the value", err)
			}
		})
	}
}

func TestExitError_Error(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  *ExitError
		want string
	}{
		{name: "status", err: &ExitError{Status: 3}, want: "exit status 3"},
		{name: "status and stderr", err: &ExitError{Status: 1, Stderr: "first\nlast\n"}, want: "exit status 1: first; last"},
		{name: "signal", err: &ExitError{Status: 143, Signal: "TERM"}, want: "killed by signal TERM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPump_SplitsLines(t *testing.T) {
	long := strings.Repeat("x", maxLine+10)
	for _, tc := range []struct {
		name string
		in   string
		want []string
	}{
		{name: "lines", in: "a\nb\n", want: []string{"a", "b"}},
		{name: "unterminated last line", in: "a\nb", want: []string{"a", "b"}},
		{name: "empty lines", in: "\n\nx\n", want: []string{"", "", "x"}},
		{name: "nothing", in: "", want: nil},
		{name: "overlong line", in: long + "\n", want: []string{long[:maxLine], long[maxLine:]}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			tail := &tailLines{max: 2}
			pump(iotest.OneByteReader(strings.NewReader(tc.in)), func(l string) { got = append(got, l) }, nil, tail, 0)
			if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
				t.Errorf("lines = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestIsConnectError(t *testing.T) {
	hk := &HostKeyError{Host: "web1", Addr: "10.0.0.1:22"}
	ce := &ConnectError{Host: "web1", Addr: "10.0.0.1:22", Stage: "connect", Err: errors.New("refused")}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{name: "host key", err: hk, want: true},
		{name: "connect", err: ce, want: true},
		{name: "wrapped", err: errors.Join(errors.New("deploy"), &ConnectError{Stage: "jump", Err: hk}), want: true},
		{name: "exit", err: &ExitError{Status: 1}, want: false},
		{name: "nil", err: nil, want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsConnectError(tc.err); got != tc.want {
				t.Errorf("IsConnectError(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
