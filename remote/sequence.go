package remote

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
)

// Step is one command of a Sequence: a command built by Script.
type Step struct {
	Command Command
	// Always runs the step even after an earlier one failed: an unlock that must follow whatever came before.
	Always bool
}

// sequenceScript runs the steps given as parameters, each as its flag (1: always), its script text, its
// parameter count and its parameters, one after another, each in a subshell of its own with its own
// positional parameters, so a step's `exit` or `set -e` ends only that step. After the first step that fails,
// only the steps flagged always run. Each step's output is followed by a status line on stdout
// (sequenceMarker); the sequence exits with the status of the first step that failed.
const sequenceScript = `rc=0; i=0
while [ $# -gt 0 ]; do
  always=$1; text=$2; n=$3; shift 3; i=$((i+1))
  if [ "$rc" -eq 0 ] || [ "$always" = 1 ]; then
    (k=0; for a do shift; if [ "$k" -lt "$n" ]; then set -- "$@" "$a"; fi; k=$((k+1)); done; eval "$text")
    s=$?
    echo "` + sequenceMarker + ` $i $s"
    if [ "$s" -ne 0 ] && [ "$rc" -eq 0 ]; then rc=$s; fi
  fi
  shift "$n"
done
exit "$rc"`

// sequenceMarker starts the status line written after each step of a sequence.
const sequenceMarker = "skiff:step"

// Sequence is one command that runs steps back to back in one remote shell, where each would otherwise cost
// a session, a shell and a round trip of its own. Each step keeps its script and parameters as they are
// (nothing is spliced into shell text); SequenceOutputs splits the output back into steps. Steps must be
// built by Script, without Dir, Env or Stdin; the caller may set the sequence's Stdin for the one step that
// reads it.
func Sequence(steps ...Step) (Command, error) {
	args := []string{}
	for i, s := range steps {
		a := s.Command.Argv
		if len(a) < 4 || a[0] != "sh" || a[1] != "-c" || s.Command.Script != "" || s.Command.Dir != "" ||
			len(s.Command.Env) > 0 || s.Command.Stdin != nil {
			return Command{}, fmt.Errorf("sequence step %d: not a plain Script command", i+1)
		}
		always := "0"
		if s.Always {
			always = "1"
		}
		args = append(args, always, a[2], strconv.Itoa(len(a)-4))
		args = append(args, a[4:]...)
	}
	if len(steps) == 0 {
		return Command{}, errors.New("sequence: no steps")
	}
	return Script(sequenceScript, args...), nil
}

// StepOutput is what one step of a sequence printed and how it ended.
type StepOutput struct {
	Ran    bool // false when an earlier step failed and this one was skipped (or the output was cut short)
	Status int
	Stdout []byte
}

// SequenceOutputs splits a sequence's standard output into its n steps.
func SequenceOutputs(stdout []byte, n int) []StepOutput {
	w := NewSequenceWatch(n, len(stdout))
	for len(stdout) > 0 {
		line, rest, _ := bytes.Cut(stdout, []byte("\n"))
		w.Line(string(line))
		stdout = rest
	}
	return w.Outputs()
}

// SequenceErrors is, for each of a sequence's n steps, nil when it succeeded, an *ExitError with the
// sequence's standard error (ee, the sequence's own error, may be nil) when it failed, or ErrStepSkipped.
func SequenceErrors(stdout []byte, n int, ee *ExitError) []error {
	errs := make([]error, n)
	for i, o := range SequenceOutputs(stdout, n) {
		switch {
		case !o.Ran:
			errs[i] = ErrStepSkipped
		case o.Status != 0:
			e := &ExitError{Status: o.Status}
			if ee != nil {
				e.Stderr = ee.Stderr
			}
			errs[i] = e
		}
	}
	return errs
}

// ErrStepSkipped is the error of a step of a sequence that did not run, since an earlier one failed (or whose
// end the output did not show).
var ErrStepSkipped = errors.New("not run: an earlier step failed")

// SequenceWatch splits the output of a running sequence into its steps as it arrives (its Line is the
// command's Stdout callback) and tells which step ended as soon as it did, so that a caller can act on a first
// step (a lock taken) while later ones still run. What it keeps is bounded: output beyond max bytes is
// dropped, and a step whose output was cut short is not reported as ended.
type SequenceWatch struct {
	mu      sync.Mutex
	outs    []StepOutput
	pending []byte
	left    int
	cut     bool
	ended   chan int
}

// NewSequenceWatch watches a sequence of n steps, keeping at most max bytes of their output.
func NewSequenceWatch(n, max int) *SequenceWatch {
	return &SequenceWatch{outs: make([]StepOutput, n), left: max, ended: make(chan int, n)}
}

// Line takes one line of the sequence's standard output.
func (w *SequenceWatch) Line(line string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if i, s, ok := parseMarker([]byte(line)); ok && i >= 1 && i <= len(w.outs) && !w.outs[i-1].Ran {
		if !w.cut {
			w.outs[i-1] = StepOutput{Ran: true, Status: s, Stdout: w.pending}
			w.ended <- i
		}
		w.pending, w.cut = nil, false
		return
	}
	if len(line)+1 > w.left {
		w.cut = true
		return
	}
	w.left -= len(line) + 1
	w.pending = append(append(w.pending, line...), '\n')
}

// Ended receives the number (from 1) of each step as it ends.
func (w *SequenceWatch) Ended() <-chan int { return w.ended }

// Outputs is every step's output so far.
func (w *SequenceWatch) Outputs() []StepOutput {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.outs)
}

func parseMarker(line []byte) (step, status int, ok bool) {
	rest, found := bytes.CutPrefix(line, []byte(sequenceMarker+" "))
	if !found {
		return 0, 0, false
	}
	a, b, found := bytes.Cut(rest, []byte(" "))
	if !found {
		return 0, 0, false
	}
	step, err1 := strconv.Atoi(string(a))
	status, err2 := strconv.Atoi(string(b))
	return step, status, err1 == nil && err2 == nil
}
