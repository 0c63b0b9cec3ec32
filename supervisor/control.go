package supervisor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// tailBytes and tailLines bound the log excerpt attached to a StartError.
const (
	tailBytes = 4096
	tailLines = 20
)

// Restarted records one program restarted by Restart. OldPID is 0 when the
// program was not running before.
type Restarted struct {
	Name   string `json:"name"`
	OldPID int    `json:"old_pid"`
	NewPID int    `json:"new_pid"`
}

// StartError explains why a process did not reach RUNNING: the state it
// ended in, supervisord's spawn error, and the last lines of its stderr log
// (its stdout log when stderr is redirected there).
type StartError struct {
	Name       string
	State      State
	SpawnErr   string
	ExitStatus int // meaningful only in state EXITED
	LogTail    string
	// detached keeps LogTail out of Error (Options.DetachLogTail).
	detached bool
	// Err is the underlying cause: a Fault such as SPAWN_ERROR, or the
	// observation that the process left STARTING for another state.
	Err error
}

// Error renders the failure with its log tail on the following lines.
func (e *StartError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s did not start: %v", e.Name, e.Err)
	var left leftStarting
	if e.State != "" && !(errors.As(e.Err, &left) && left.state == e.State) {
		fmt.Fprintf(&b, "; state %s", e.State)
	}
	if e.State == StateExited {
		fmt.Fprintf(&b, "; exit status %d", e.ExitStatus)
	}
	if e.SpawnErr != "" {
		fmt.Fprintf(&b, "; spawnerr %q", e.SpawnErr)
	}
	if e.LogTail != "" && !e.detached {
		fmt.Fprintf(&b, "\nlast lines of its log:\n%s", e.LogTail)
	}
	return b.String()
}

// Unwrap returns the underlying cause, so IsFault sees through a StartError.
func (e *StartError) Unwrap() error { return e.Err }

// leftStarting is the cause of a StartError when supervisord accepted the
// start but the process then went to a state other than RUNNING.
type leftStarting struct{ state State }

func (e leftStarting) Error() string { return "it went to " + string(e.state) + " instead of RUNNING" }

// Start starts one process (a full "group:name"). With wait it polls until
// the process is RUNNING, and returns a *StartError (wrapped) when it ends in
// BACKOFF, FATAL, EXITED or any other state instead, or when supervisord
// cannot spawn it. Other faults, such as ALREADY_STARTED, are returned as is.
func (c *Client) Start(ctx context.Context, name string, wait bool) error {
	if !wait {
		if err := c.call(ctx, nil, "supervisor.startProcess", name, false); err != nil {
			return c.fail(err)
		}
		return nil
	}
	_, err := c.startAndWait(ctx, name, -1)
	return err
}

// startAndWait starts name and polls until it has left STARTING, returning its info once RUNNING. A process
// cannot be RUNNING before it has stayed up for its startsecs: with startsecs known (>= 0), the polls are
// sparse until then and quick after, so that the restart ends within a few milliseconds of supervisord's
// transition without asking it ten times a second meanwhile (every poll wakes supervisord and the target's
// sshd, on every host of a fleet at once).
func (c *Client) startAndWait(ctx context.Context, name string, startsecs time.Duration) (ProcessInfo, error) {
	if err := c.call(ctx, nil, "supervisor.startProcess", name, false); err != nil {
		if isSpawnFault(err) {
			return ProcessInfo{}, c.fail(c.startFailure(ctx, name, err))
		}
		return ProcessInfo{}, c.fail(err)
	}
	p := pacing{}
	if startsecs >= 0 {
		// startProcess answers after the spawn: the process cannot be RUNNING before this.
		p = pacing{quick: true, settle: time.Now().Add(startsecs)}
	}
	info, err := c.waitWhile(ctx, name, "start", p, StateStarting)
	if err != nil {
		return info, c.fail(err)
	}
	if info.State != StateRunning {
		return info, c.fail(c.startFailure(ctx, name, leftStarting{info.State}))
	}
	return info, nil
}

func isSpawnFault(err error) bool {
	for _, code := range []int{FaultSpawnError, FaultAbnormalTermination, FaultNoFile, FaultNotExecutable} {
		if IsFault(err, code) {
			return true
		}
	}
	return false
}

// Stop stops one process (a full "group:name"). With wait it polls until
// the process has left RUNNING, STARTING, BACKOFF and STOPPING. Stopping a
// process that is not running returns a FaultNotRunning fault.
func (c *Client) Stop(ctx context.Context, name string, wait bool) error {
	if err := c.call(ctx, nil, "supervisor.stopProcess", name, false); err != nil {
		return c.fail(err)
	}
	if !wait {
		return nil
	}
	if _, err := c.waitWhile(ctx, name, "stop", pacing{quick: true}, StateStopping, StateRunning, StateStarting, StateBackoff); err != nil {
		return c.fail(err)
	}
	return nil
}

// Signal sends sig ("HUP", "SIGUSR1" or a number) to one process. A process
// that is not running gives FaultNotRunning, an unknown signal FaultBadSignal.
func (c *Client) Signal(ctx context.Context, name, sig string) error {
	if err := c.call(ctx, nil, "supervisor.signalProcess", name, sig); err != nil {
		return c.fail(err)
	}
	return nil
}

// Restart resolves names (see Resolve) and restarts each program in turn:
// stop and wait (a program that was not running is fine), then start and
// wait until RUNNING. It stops at the first program that fails, leaving the
// rest untouched, and returns the programs restarted so far with the error;
// a program that does not come up yields a wrapped *StartError.
func (c *Client) Restart(ctx context.Context, names []string) ([]Restarted, error) {
	procs, err := c.Processes(ctx)
	if err != nil {
		return nil, err
	}
	full, err := resolve(procs, names)
	if err != nil {
		return nil, c.fail(err)
	}
	oldPID := make(map[string]int, len(procs))
	for _, p := range procs {
		oldPID[p.FullName()] = p.PID
	}
	startsecs := c.startSecs(ctx)
	var done []Restarted
	for _, name := range full {
		if err := c.Stop(ctx, name, true); err != nil && !IsFault(err, FaultNotRunning) {
			return done, err
		}
		settle, ok := startsecs[name]
		if !ok {
			settle = -1
		}
		info, err := c.startAndWait(ctx, name, settle)
		if err != nil {
			return done, err
		}
		done = append(done, Restarted{Name: name, OldPID: oldPID[name], NewPID: info.PID})
	}
	return done, nil
}

// startSecs returns every process's startsecs by full name, from getAllConfigInfo. It is best effort: a
// supervisord that lacks the method, or an answer that does not decode, gives none, and starts are then
// polled at the usual interval.
func (c *Client) startSecs(ctx context.Context) map[string]time.Duration {
	var raw []struct {
		Name      string `xmlrpc:"name"`
		Group     string `xmlrpc:"group"`
		StartSecs int    `xmlrpc:"startsecs"`
	}
	if err := c.call(ctx, &raw, "supervisor.getAllConfigInfo"); err != nil {
		return nil
	}
	out := make(map[string]time.Duration, len(raw))
	for _, r := range raw {
		if r.StartSecs >= 0 && r.StartSecs <= maxStartSecs {
			out[r.Group+":"+r.Name] = time.Duration(r.StartSecs) * time.Second
		}
	}
	return out
}

// maxStartSecs bounds a startsecs taken from supervisord: a larger one is polled as if unknown.
const maxStartSecs = 24 * 60 * 60

// TailStderr returns the last n lines (n <= 0: all) of the last 4 KiB of a
// process's stderr log; a line cut by the 4 KiB window is dropped.
func (c *Client) TailStderr(ctx context.Context, name string, n int) (string, error) {
	s, err := c.tail(ctx, "supervisor.tailProcessStderrLog", name, n)
	if err != nil {
		return "", c.fail(err)
	}
	return s, nil
}

// TailStdout is TailStderr for the stdout log, which also holds stderr for
// programs with redirect_stderr=true.
func (c *Client) TailStdout(ctx context.Context, name string, n int) (string, error) {
	s, err := c.tail(ctx, "supervisor.tailProcessStdoutLog", name, n)
	if err != nil {
		return "", c.fail(err)
	}
	return s, nil
}

func (c *Client) tail(ctx context.Context, method, name string, n int) (string, error) {
	var res []any
	if err := c.call(ctx, &res, method, name, 0, tailBytes); err != nil {
		return "", err
	}
	if len(res) != 3 {
		return "", fmt.Errorf("%s %s: want [bytes, offset, overflow], got %d values", method, name, len(res))
	}
	text, _ := res[0].(string)
	overflow, _ := res[2].(bool)
	return lastLines(text, overflow, n), nil
}

// lastLines keeps the last n lines of text; when the text is the end of a
// longer log (overflow) its first, partial line is dropped.
func lastLines(text string, overflow bool, n int) string {
	if overflow {
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			text = text[i+1:]
		}
	}
	text = strings.TrimRight(text, "\n")
	if text == "" {
		return ""
	}
	lines := strings.Split(text, "\n")
	if n > 0 && len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// pacing says how waitWhile spaces its polls. With quick, the first polls come sooner than the poll interval
// (an eighth of it, doubling up to it): a stop usually completes within a few milliseconds of the request,
// and a whole interval's wait would be added to every restart. Before settle, when the state cannot change
// yet, polls come every sparseFactor intervals (to see a crash early) and one comes at settle itself.
type pacing struct {
	quick  bool
	settle time.Time
}

// sparseFactor spaces polls before pacing.settle.
const sparseFactor = 4

// waitWhile polls a process until its state is not one of states, and returns its last info. It gives up
// when ctx ends.
func (c *Client) waitWhile(ctx context.Context, name, what string, p pacing, states ...State) (ProcessInfo, error) {
	first := c.poll
	if p.quick {
		first = max(c.poll/8, time.Millisecond)
	}
	wait := first
	next := time.Now()
	for {
		var raw rawProcessInfo
		if err := c.call(ctx, &raw, "supervisor.getProcessInfo", name); err != nil {
			return ProcessInfo{}, err
		}
		info := raw.info()
		if !slices.Contains(states, info.State) {
			return info, nil
		}
		if now := time.Now(); now.Before(p.settle) {
			if next = now.Add(sparseFactor * c.poll); !next.Before(p.settle) {
				next, wait = p.settle, first
			}
		} else {
			// Polls keep to their schedule, but a slow one never makes the next come early.
			if next = next.Add(wait); next.Before(now) {
				next = now
			}
			wait = min(2*wait, c.poll)
		}
		timer := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			timer.Stop()
			return info, fmt.Errorf("waiting for %s to %s (still %s): %w", name, what, info.State, ctx.Err())
		case <-timer.C:
		}
	}
}

// startFailure builds a StartError for name, filling in its state and log
// tail on a best-effort basis: failing to fetch them must not hide cause.
func (c *Client) startFailure(ctx context.Context, name string, cause error) error {
	e := &StartError{Name: name, Err: cause, detached: c.detach}
	var raw rawProcessInfo
	if err := c.call(ctx, &raw, "supervisor.getProcessInfo", name); err != nil {
		return e
	}
	info := raw.info()
	e.State, e.SpawnErr, e.ExitStatus = info.State, info.SpawnErr, info.ExitStatus
	method := "supervisor.tailProcessStderrLog"
	if info.StderrLogfile == "" && info.StdoutLogfile != "" {
		method = "supervisor.tailProcessStdoutLog" // redirect_stderr=true
	}
	if tail, err := c.tail(ctx, method, name, tailLines); err == nil {
		e.LogTail = tail
	} else {
		e.LogTail = fmt.Sprintf("(log unavailable: %v)", err)
	}
	return e
}
