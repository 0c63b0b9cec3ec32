package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/skiffdeploy/skiff/deploy"
)

// hostResult is one host's outcome of a command, printed as a line of text or as part of the JSON report.
type hostResult struct {
	Host       string                `json:"host"`
	OK         bool                  `json:"ok"`
	Error      string                `json:"error,omitempty"`
	DurationMS int64                 `json:"duration_ms"`
	Check      *deploy.Facts         `json:"check,omitempty"`
	HostKey    string                `json:"host_key,omitempty"`
	ExitStatus *int                  `json:"exit_status,omitempty"`
	Stdout     string                `json:"stdout,omitempty"`
	Stderr     string                `json:"stderr,omitempty"`
	Releases   []releaseInfo         `json:"releases,omitempty"`
	History    []deploy.HistoryEntry `json:"history,omitempty"`
	Status     *appStatus            `json:"status,omitempty"`
	Lock       string                `json:"lock,omitempty"`
	Pruned     *deploy.PruneReport   `json:"pruned,omitempty"`
	Env        *envReport            `json:"env,omitempty"`
	*deploy.Outcome

	summary string // the text-mode line after "ok"
}

// report is the one JSON object `--json` prints.
type report struct {
	Command  string       `json:"command"`
	OK       bool         `json:"ok"`
	ExitCode int          `json:"exit_code"`
	DryRun   bool         `json:"dry_run,omitempty"` // nothing was changed: releases "after" are what would be live
	Hosts    []hostResult `json:"hosts"`
}

// printer owns skiff's output. In text mode, remote output streams live as "host | line" with host names
// padded to one width, so fifty hosts stay readable; in JSON mode stdout carries only the final report.
type printer struct {
	mu     sync.Mutex
	out    io.Writer
	err    io.Writer
	json   bool
	dryRun bool
	width  int
	// onReport, when set, receives the report of a finished command after it is printed (notifications).
	onReport func(report)
	// view shows progress events (nil: none); live is where lines go while it draws on the terminal.
	view     progressView
	stopView sync.Once
	live     io.Writer
	// progressTo is where plain progress lines go (stdout, or stderr with --json).
	progressTo io.Writer
}

func newPrinter(out, err io.Writer, asJSON, dryRun bool) *printer {
	return &printer{out: out, err: err, json: asJSON, dryRun: dryRun}
}

// setHosts fixes the width of the host column.
func (p *printer) setHosts(names []string) {
	for _, n := range names {
		if len(n) > p.width {
			p.width = len(n)
		}
	}
}

// line prints one line of a host's remote output; stderr lines are marked so they stand out.
func (p *printer) line(host, stream, text string) {
	if p.json {
		return
	}
	sep := "|"
	if stream == "stderr" {
		sep = "!"
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.lineWriter(p.out), "%-*s %s %s\n", p.width, host, sep, text)
}

// lineWriter is w, or the live progress display while it draws (its lines scroll above the display).
func (p *printer) lineWriter(w io.Writer) io.Writer {
	if p.live != nil {
		return p.live
	}
	return w
}

// progressLine prints one plain progress line of a host.
func (p *printer) progressLine(host, text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.progressTo, "%-*s > %s\n", p.width, host, text)
}

// stopProgress ends the progress display, once; results are printed after it.
func (p *printer) stopProgress() {
	p.mu.Lock()
	v := p.view
	p.mu.Unlock()
	if v != nil {
		p.stopView.Do(v.stop)
	}
}

// logf prints a diagnostic line to stderr (verbose mode and warnings).
func (p *printer) logf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.lineWriter(p.err), format+"\n", args...)
}

// finish prints the per-host results and returns the error that decides the exit code.
func (p *printer) finish(command string, results []hostResult, errs []error) error {
	code := hostsExitCode(errs)
	r := report{Command: command, OK: code == exitOK, ExitCode: code, DryRun: p.dryRun, Hosts: results}
	p.stopProgress()
	if p.onReport != nil {
		defer p.onReport(r)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.json {
		enc := json.NewEncoder(p.out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else {
		failed := 0
		for _, h := range results {
			if h.OK {
				fmt.Fprintf(p.out, "%-*s   ok     %s\n", p.width, h.Host, h.summary)
				continue
			}
			failed++
			fmt.Fprintf(p.out, "%-*s   FAILED %s\n", p.width, h.Host, oneLine(h.Error))
			if h.Outcome != nil && len(h.LogTail) > 0 {
				fmt.Fprintf(p.out, "%-*s          last %d line(s) of the app's log:\n", p.width, "", len(h.LogTail))
				for _, l := range h.LogTail {
					fmt.Fprintf(p.out, "%-*s          | %s\n", p.width, "", l)
				}
			}
		}
		dry := ""
		if p.dryRun {
			dry = " (dry run: nothing was changed)"
		}
		fmt.Fprintf(p.out, "%s: %d host(s), %d ok, %d failed%s\n", command, len(results), len(results)-failed, failed, dry)
	}
	if code == exitOK {
		return nil
	}
	return &reportedError{code: code, errs: nonNil(errs)}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func millis(d time.Duration) int64 { return d.Milliseconds() }
