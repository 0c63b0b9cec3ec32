package fleet

import (
	"strings"
	"time"

	"github.com/skiffdeploy/skiff/deploy"
	"github.com/skiffdeploy/skiff/release"
)

// The kinds of Event.
const (
	// EventStart opens a request: Hosts are the hosts it selected.
	EventStart = "start"
	// EventNotice is a line about the whole request (what is deployed to how many hosts); Host is "".
	EventNotice = "notice"
	// EventLine is a line of a host's remote output or progress; Stream is "stdout" or "stderr".
	EventLine = "line"
	// EventProgress is a step of a host as it runs (start, progress every quarter second, end); Progress is set.
	EventProgress = "progress"
	// EventDone is a host's result; Result is set.
	EventDone = "done"
)

// Event is one thing that happened while a request ran. Events of one host arrive in the order they
// happened.
type Event struct {
	Time   time.Time `json:"time"`
	Kind   string    `json:"kind"`
	Host   string    `json:"host,omitempty"`
	Stream string    `json:"stream,omitempty"`
	Text   string    `json:"text,omitempty"`
	// Hosts are the selected hosts, on EventStart.
	Hosts []string `json:"hosts,omitempty"`
	// Progress is the host's step, on EventProgress.
	Progress *deploy.Progress `json:"progress,omitempty"`
	// Result is the host's result, on EventDone.
	Result *HostResult `json:"result,omitempty"`
}

// Report is the result of one request: one HostResult per selected host, in inventory order.
type Report struct {
	Command string        `json:"command"`
	App     string        `json:"app,omitempty"`
	DryRun  bool          `json:"dry_run,omitempty"` // nothing was changed: releases "after" are what would be live
	Hosts   []*HostResult `json:"hosts"`
}

// OK reports whether every host succeeded.
func (r *Report) OK() bool {
	for _, h := range r.Hosts {
		if !h.OK {
			return false
		}
	}
	return true
}

// FailedHosts names the hosts that failed and why, one line: "web1: reason; web2: reason".
func (r *Report) FailedHosts() string {
	var failed []string
	for _, h := range r.Hosts {
		if !h.OK {
			failed = append(failed, h.Host+": "+strings.Join(strings.Fields(h.Error), " "))
		}
	}
	return strings.Join(failed, "; ")
}

// Errs returns each host's error at its index (nil for a host that succeeded).
func (r *Report) Errs() []error {
	errs := make([]error, len(r.Hosts))
	for i, h := range r.Hosts {
		errs[i] = h.Err
	}
	return errs
}

// HostResult is one host's outcome of a request. Which fields are set depends on the request.
type HostResult struct {
	Host       string                 `json:"host"`
	OK         bool                   `json:"ok"`
	Error      string                 `json:"error,omitempty"`
	DurationMS int64                  `json:"duration_ms"`
	Check      *deploy.Facts          `json:"check,omitempty"`
	HostKey    string                 `json:"host_key,omitempty"`
	ExitStatus *int                   `json:"exit_status,omitempty"`
	Stdout     string                 `json:"stdout,omitempty"`
	Stderr     string                 `json:"stderr,omitempty"`
	Releases   []ReleaseInfo          `json:"releases,omitempty"`
	History    []release.HistoryEntry `json:"history,omitempty"`
	Status     *AppStatus             `json:"status,omitempty"`
	Lock       string                 `json:"lock,omitempty"`
	// Released is set by `lock release` when it removed a lock: what the lock said.
	Released string              `json:"released,omitempty"`
	Pruned   *deploy.PruneReport `json:"pruned,omitempty"`
	Env      *EnvReport          `json:"env,omitempty"`
	*deploy.Outcome

	// Err is the host's error, for exit codes and errors.As; Error is its text.
	Err error `json:"-"`
}

// ReleaseInfo is one release on a host as `skiff releases` shows it.
type ReleaseInfo struct {
	ID      string `json:"id"`
	Current bool   `json:"current"`
	Failed  bool   `json:"failed"`
	// Incomplete marks a release directory without a manifest: the remains of an interrupted deploy.
	Incomplete bool `json:"incomplete,omitempty"`
	// Builds are the builds (source apps with [[apps.NAME.builds]]) the release links, with their keys.
	Builds []deploy.ReleaseBuild `json:"builds,omitempty"`
	// Image apps: the image of the release and whether it is still on the host.
	Tag     string `json:"tag,omitempty"`
	Image   string `json:"image,omitempty"`
	Digest  string `json:"digest,omitempty"`
	Present *bool  `json:"present,omitempty"`
}

// AppStatus is what `skiff status` reports per host.
type AppStatus struct {
	Current   string          `json:"current"`
	Processes []ProcessStatus `json:"processes,omitempty"`
	CheckOK   bool            `json:"check_ok"`
	CheckErr  string          `json:"check_error,omitempty"`
	Lock      string          `json:"lock,omitempty"`
	// Image apps: live release, pinned image and containers.
	Image *deploy.ImageState `json:"image,omitempty"`
}

// ProcessStatus is one supervisord program of the app.
type ProcessStatus struct {
	Name  string `json:"name"`
	State string `json:"state"`
	PID   int    `json:"pid"`
}
