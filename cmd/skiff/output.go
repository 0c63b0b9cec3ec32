package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/skiffdeploy/skiff/fleet"
)

// hostResult and releaseInfo are the engine's types, under the names the CLI's tests use.
type (
	hostResult  = fleet.HostResult
	releaseInfo = fleet.ReleaseInfo
)

// report is the one JSON object `--json` prints.
type report struct {
	Command  string        `json:"command"`
	OK       bool          `json:"ok"`
	ExitCode int           `json:"exit_code"`
	DryRun   bool          `json:"dry_run,omitempty"` // nothing was changed: releases "after" are what would be live
	Hosts    []*hostResult `json:"hosts"`
}

// view is how one command shows a host's result in text mode: the lines printed when the host finishes
// (details) and the line after "ok" in the final table (summary).
type view struct {
	details func(r *hostResult) []string
	summary func(r *hostResult) string
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
	view   view
}

func newPrinter(out, err io.Writer, asJSON, dryRun bool) *printer {
	return &printer{out: out, err: err, json: asJSON, dryRun: dryRun}
}

// show sets how the command's results look in text mode.
func (p *printer) show(v view) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.view = v
}

// event shows what the fleet engine reports while a request runs.
func (p *printer) event(ev fleet.Event) {
	switch ev.Kind {
	case fleet.EventStart:
		p.setHosts(ev.Hosts)
	case fleet.EventNotice:
		if !p.json {
			p.logf("%s", ev.Text)
		}
	case fleet.EventLine:
		p.line(ev.Host, ev.Stream, ev.Text)
	case fleet.EventDone:
		p.mu.Lock()
		details := p.view.details
		p.mu.Unlock()
		if details != nil && ev.Result.Err == nil {
			for _, l := range details(ev.Result) {
				p.line(ev.Host, "stdout", l)
			}
		}
	}
}

// setHosts fixes the width of the host column.
func (p *printer) setHosts(names []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
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
	fmt.Fprintf(p.out, "%-*s %s %s\n", p.width, host, sep, text)
}

// logf prints a diagnostic line to stderr (verbose mode and warnings).
func (p *printer) logf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.err, format+"\n", args...)
}

// finish prints the per-host results of a request and returns the error that decides the exit code: err
// when the request could not run at all.
func (p *printer) finish(rep *fleet.Report, err error) error {
	if err != nil {
		return err
	}
	errs := rep.Errs()
	code := hostsExitCode(errs)
	r := report{Command: rep.Command, OK: code == exitOK, ExitCode: code, DryRun: p.dryRun, Hosts: rep.Hosts}
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
		for _, h := range rep.Hosts {
			if h.OK {
				summary := ""
				if p.view.summary != nil {
					summary = p.view.summary(h)
				}
				fmt.Fprintf(p.out, "%-*s   ok     %s\n", p.width, h.Host, summary)
				continue
			}
			failed++
			fmt.Fprintf(p.out, "%-*s   FAILED %s\n", p.width, h.Host, oneLine(h.Error))
		}
		dry := ""
		if p.dryRun {
			dry = " (dry run: nothing was changed)"
		}
		fmt.Fprintf(p.out, "%s: %d host(s), %d ok, %d failed%s\n", rep.Command, len(rep.Hosts), len(rep.Hosts)-failed, failed, dry)
	}
	if code == exitOK {
		return nil
	}
	var failed []error
	for _, e := range errs {
		if e != nil {
			failed = append(failed, e)
		}
	}
	return &reportedError{code: code, errs: failed}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func lastN[T any](s []T, n int) []T {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }
