package supervisor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// State is a supervisord process state name.
type State string

// Process states as supervisord names them.
const (
	StateStopped  State = "STOPPED"
	StateStarting State = "STARTING"
	StateRunning  State = "RUNNING"
	StateBackoff  State = "BACKOFF"
	StateStopping State = "STOPPING"
	StateExited   State = "EXITED"
	StateFatal    State = "FATAL"
	StateUnknown  State = "UNKNOWN"
)

// ProcessInfo describes one process as getProcessInfo reports it. Times are
// zero when supervisord reports 0 (never started or never stopped).
type ProcessInfo struct {
	Name          string
	Group         string
	State         State
	PID           int
	Description   string
	SpawnErr      string
	StdoutLogfile string
	StderrLogfile string
	ExitStatus    int
	Start         time.Time
	Stop          time.Time
	Now           time.Time
}

// FullName returns the "group:name" form supervisord accepts everywhere.
func (p ProcessInfo) FullName() string { return p.Group + ":" + p.Name }

// rawProcessInfo is the wire form of a process info struct.
type rawProcessInfo struct {
	Name          string `xmlrpc:"name"`
	Group         string `xmlrpc:"group"`
	StateName     string `xmlrpc:"statename"`
	PID           int    `xmlrpc:"pid"`
	Description   string `xmlrpc:"description"`
	SpawnErr      string `xmlrpc:"spawnerr"`
	StdoutLogfile string `xmlrpc:"stdout_logfile"`
	StderrLogfile string `xmlrpc:"stderr_logfile"`
	ExitStatus    int    `xmlrpc:"exitstatus"`
	Start         int64  `xmlrpc:"start"`
	Stop          int64  `xmlrpc:"stop"`
	Now           int64  `xmlrpc:"now"`
}

func (r rawProcessInfo) info() ProcessInfo {
	return ProcessInfo{
		Name:          r.Name,
		Group:         r.Group,
		State:         State(r.StateName),
		PID:           r.PID,
		Description:   r.Description,
		SpawnErr:      r.SpawnErr,
		StdoutLogfile: r.StdoutLogfile,
		StderrLogfile: r.StderrLogfile,
		ExitStatus:    r.ExitStatus,
		Start:         unixTime(r.Start),
		Stop:          unixTime(r.Stop),
		Now:           unixTime(r.Now),
	}
}

func unixTime(sec int64) time.Time {
	if sec == 0 {
		return time.Time{}
	}
	return time.Unix(sec, 0)
}

// ErrNoMatch is wrapped by Resolve errors for a pattern that names no process.
var ErrNoMatch = errors.New("no such program")

// State returns supervisord's own state name (RUNNING, RESTARTING,
// SHUTDOWN, FATAL); it doubles as a cheap reachability and auth check.
func (c *Client) State(ctx context.Context) (string, error) {
	var st struct {
		Name string `xmlrpc:"statename"`
	}
	if err := c.call(ctx, &st, "supervisor.getState"); err != nil {
		return "", c.fail(err)
	}
	return st.Name, nil
}

// Version returns the version of supervisord, such as "4.2.5".
func (c *Client) Version(ctx context.Context) (string, error) {
	var v string
	if err := c.call(ctx, &v, "supervisor.getSupervisorVersion"); err != nil {
		return "", c.fail(err)
	}
	return v, nil
}

// Processes returns every process supervisord manages, in its order.
func (c *Client) Processes(ctx context.Context) ([]ProcessInfo, error) {
	var raw []rawProcessInfo
	if err := c.call(ctx, &raw, "supervisor.getAllProcessInfo"); err != nil {
		return nil, c.fail(err)
	}
	out := make([]ProcessInfo, len(raw))
	for i, r := range raw {
		out[i] = r.info()
	}
	return out, nil
}

// Process returns one process by name ("group:name", or "name" when the
// group has the program's name). An unknown name is a FaultBadName fault.
func (c *Client) Process(ctx context.Context, name string) (ProcessInfo, error) {
	var raw rawProcessInfo
	if err := c.call(ctx, &raw, "supervisor.getProcessInfo", name); err != nil {
		return ProcessInfo{}, c.fail(err)
	}
	return raw.info(), nil
}

// Resolve turns program patterns into sorted, de-duplicated full process
// names. A pattern is "group:name", "group:*" (every process of the group),
// or a bare word, which means the processes of the group with that name
// (a [program:x] section, including its numprocs copies, or a [group:x]) or
// else the one process with that name. A pattern that matches nothing, or a
// bare name shared by processes of several groups, is an error that lists
// the processes that exist.
func (c *Client) Resolve(ctx context.Context, patterns []string) ([]string, error) {
	procs, err := c.Processes(ctx)
	if err != nil {
		return nil, err
	}
	names, err := resolve(procs, patterns)
	if err != nil {
		return nil, c.fail(err)
	}
	return names, nil
}

// resolve is Resolve over an already fetched process list.
func resolve(procs []ProcessInfo, patterns []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, pat := range patterns {
		matched, err := match(procs, pat)
		if err != nil {
			return nil, err
		}
		for _, m := range matched {
			if !seen[m] {
				seen[m] = true
				out = append(out, m)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

func match(procs []ProcessInfo, pat string) ([]string, error) {
	var byGroup, byName []string
	group, name, qualified := strings.Cut(pat, ":")
	for _, p := range procs {
		switch {
		case qualified && p.Group == group && (name == "*" || p.Name == name):
			byGroup = append(byGroup, p.FullName())
		case !qualified && p.Group == pat:
			byGroup = append(byGroup, p.FullName())
		case !qualified && p.Name == pat:
			byName = append(byName, p.FullName())
		}
	}
	switch {
	case len(byGroup) > 0:
		return byGroup, nil
	case len(byName) == 1:
		return byName, nil
	case len(byName) > 1:
		slices.Sort(byName)
		return nil, fmt.Errorf("program %q is ambiguous: it names %s; use group:name", pat, strings.Join(byName, ", "))
	}
	return nil, fmt.Errorf("%w %q (supervisord has: %s)", ErrNoMatch, pat, listNames(procs))
}

// listNames renders the full names of procs for error messages, capped so a
// large supervisord does not produce a wall of text.
func listNames(procs []ProcessInfo) string {
	const limit = 20
	if len(procs) == 0 {
		return "no programs"
	}
	names := make([]string, 0, len(procs))
	for _, p := range procs {
		names = append(names, p.FullName())
	}
	slices.Sort(names)
	if len(names) > limit {
		return strings.Join(names[:limit], ", ") + fmt.Sprintf(", and %d more", len(names)-limit)
	}
	return strings.Join(names, ", ")
}
