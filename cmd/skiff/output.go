package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/skiffdeploy/skiff/deploy"
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
	App      string        `json:"-"`
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
	// onReport, when set, receives the report of a finished command after it is printed (notifications).
	onReport func(report)
	// progressMode and progressRows say how progress is shown (see progressMode); progress is the display,
	// started by the first progress event; live is where lines go while it draws on the terminal.
	progressMode string
	progressRows int
	progress     progressView
	progressOnce sync.Once
	stopOnce     sync.Once
	live         io.Writer
	// progressTo is where plain progress lines go (stdout, or stderr with --json).
	progressTo io.Writer
	// logLines: `skiff logs`, whose lines are JSON lines with --json; with follow, a host that fails is
	// reported as it fails.
	logLines, follow bool
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
		if p.logLines && p.json {
			p.jsonLine(struct {
				Host string `json:"host"`
				Line string `json:"line"`
			}{ev.Host, ev.Text})
			return
		}
		p.line(ev.Host, ev.Stream, ev.Text)
	case fleet.EventProgress:
		p.progressEvent(*ev.Progress)
	case fleet.EventDone:
		if p.logLines && p.follow && ev.Result.Err != nil && !errors.Is(ev.Result.Err, context.Canceled) {
			p.logf("skiff: %s: logs: %s (still following the other hosts)", ev.Host, oneLine(ev.Result.Error))
		}
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
	fmt.Fprintf(p.lineWriter(p.out), "%-*s %s %s\n", p.width, host, sep, text)
}

// lineWriter is w, or the live progress display while it draws (its lines scroll above the display).
func (p *printer) lineWriter(w io.Writer) io.Writer {
	if p.live != nil {
		return p.live
	}
	return w
}

// progressEvent shows one progress event, starting the display with the first one (commands that report
// none never start it).
func (p *printer) progressEvent(e deploy.Progress) {
	if p.progressMode == "none" || p.progressMode == "" {
		return
	}
	p.progressOnce.Do(func() {
		v := newProgressView(p.progressMode, p.progressRows, p)
		p.mu.Lock()
		p.progress = v
		if lv, ok := v.(*liveProgress); ok {
			p.live = lv.bars // lines scroll above the display from now on
		}
		p.mu.Unlock()
	})
	p.mu.Lock()
	v := p.progress
	p.mu.Unlock()
	if v != nil {
		v.event(e)
	}
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
	v := p.progress
	p.mu.Unlock()
	if v != nil {
		p.stopOnce.Do(v.stop)
	}
}

// logf prints a diagnostic line to stderr (verbose mode and warnings).
func (p *printer) logf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.lineWriter(p.err), format+"\n", args...)
}

// finish prints the per-host results of a request and returns the error that decides the exit code: err
// when the request could not run at all.
func (p *printer) finish(rep *fleet.Report, err error) error {
	if err != nil {
		return err
	}
	errs := rep.Errs()
	r := reportOf(rep, p.dryRun)
	code := r.ExitCode
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
		fmt.Fprintf(p.out, "%s: %d host(s), %d ok, %d failed%s\n", rep.Command, len(rep.Hosts), len(rep.Hosts)-failed, failed, dry)
	}
	if code == exitOK {
		return nil
	}
	return &reportedError{code: code, errs: nonNil(errs)}
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

// reportOf is the report --json prints for the engine's report of a request.
func reportOf(rep *fleet.Report, dryRun bool) report {
	code := hostsExitCode(rep.Errs())
	return report{Command: rep.Command, App: rep.App, OK: code == exitOK, ExitCode: code, DryRun: dryRun, Hosts: rep.Hosts}
}

func nonNil(errs []error) []error {
	var out []error
	for _, e := range errs {
		if e != nil {
			out = append(out, e)
		}
	}
	return out
}

// jsonLine writes v as one line of JSON to stdout.
func (p *printer) jsonLine(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.out, "%s\n", b)
}
