package remote

import (
	"errors"
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

// runSequenceLocally runs cmd with the local sh, as the target's would.
func runSequenceLocally(t *testing.T, cmd Command, stdin string) (string, int) {
	t.Helper()
	c := exec.Command(cmd.Argv[0], cmd.Argv[1:]...)
	c.Stdin = strings.NewReader(stdin)
	out, err := c.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

func TestSequence_RunsStepsWithTheirOwnParameters(t *testing.T) {
	echo := func(args ...string) Step { return Step{Command: Script(`printf '[%s]' "$@"; echo`, args...)} }
	fail := func(status string) Step {
		return Step{Command: Script(`set -e; echo failing; false; exit "$1"`, status)}
	}
	tests := []struct {
		name   string
		steps  []Step
		stdin  string
		want   []StepOutput
		status int
	}{
		{
			name:  "hostile parameters stay whole",
			steps: []Step{echo("a b", "it's", "$(reboot)", "line\nbreak"), echo(), echo("-n", "*")},
			want: []StepOutput{
				{Ran: true, Stdout: []byte("[a b][it's][$(reboot)][line\nbreak]\n")},
				{Ran: true, Stdout: []byte("[]\n")},
				{Ran: true, Stdout: []byte("[-n][*]\n")},
			},
		},
		{
			name:  "a failure skips what follows except the always steps",
			steps: []Step{echo("one"), fail("7"), echo("skipped"), {Command: Script(`echo unlock "$1"; exit 4`, "tok"), Always: true}},
			want: []StepOutput{
				{Ran: true, Stdout: []byte("[one]\n")},
				{Ran: true, Status: 1, Stdout: []byte("failing\n")},
				{},
				{Ran: true, Status: 4, Stdout: []byte("unlock tok\n")},
			},
			status: 1,
		},
		{
			name:  "exit ends only its own step",
			steps: []Step{{Command: Script(`exit 0; echo never`)}, echo("after")},
			want:  []StepOutput{{Ran: true}, {Ran: true, Stdout: []byte("[after]\n")}},
		},
		{
			name:  "one step reads the standard input",
			steps: []Step{echo("x"), {Command: Script(`cat > /dev/null; wc -c < /dev/null; echo "$1"`, "read")}},
			stdin: "names\n",
			want:  []StepOutput{{Ran: true, Stdout: []byte("[x]\n")}, {Ran: true, Stdout: []byte("0\nread\n")}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd, err := Sequence(tc.steps...)
			if err != nil {
				t.Fatal(err)
			}
			out, status := runSequenceLocally(t, cmd, tc.stdin)
			if status != tc.status {
				t.Errorf("status %d, want %d; output %q", status, tc.status, out)
			}
			if got := SequenceOutputs([]byte(out), len(tc.steps)); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("outputs\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func TestSequence_RefusesWhatItCannotKeepWhole(t *testing.T) {
	withDir := Script("true")
	withDir.Dir = "/tmp"
	for name, s := range map[string]Step{
		"argv":   {Command: Command{Argv: []string{"rm", "-rf", "x"}}},
		"script": {Command: Command{Script: "true"}},
		"dir":    {Command: withDir},
		"stdin":  {Command: Command{Argv: Script("true").Argv, Stdin: strings.NewReader("")}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Sequence(Step{Command: Script("true")}, s); err == nil {
				t.Error("no error")
			}
		})
	}
	if _, err := Sequence(); err == nil {
		t.Error("an empty sequence: no error")
	}
}
