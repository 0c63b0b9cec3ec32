package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/skiffdeploy/skiff/deploy"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// Plain progress lines (not on a terminal) come at most this often per host, or when an upload went this
// much further; not for steps shorter than plainQuiet, unless they upload at least plainBig bytes.
const (
	plainEvery = 5 * time.Second
	plainStep  = 0.10
	plainQuiet = time.Second
	plainBig   = 8 << 20
)

// progressMode picks how deploy.Progress events are shown: --progress auto (live on a terminal, plain lines
// otherwise, none with --json), live, plain or none.
func progressMode(flag string, out io.Writer, asJSON bool) (mode string, rows int, err error) {
	switch flag {
	case "", "auto":
		if asJSON {
			return "none", 0, nil
		}
		if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			_, h, err := term.GetSize(int(f.Fd()))
			if err != nil || h <= 0 {
				h = 24
			}
			return "live", h, nil
		}
		return "plain", 0, nil
	case "live":
		if asJSON {
			return "none", 0, nil
		}
		return "live", 24, nil
	case "plain", "none":
		return flag, 0, nil
	}
	return "", 0, usagef("--progress must be auto, live, plain or none, not %q", flag)
}

// progressText renders one event: the step, and for uploads how much of the total is sent, the rate and
// the time left.
func progressText(p deploy.Progress) string {
	var b strings.Builder
	b.WriteString(p.Step)
	if p.BytesTotal > 0 || p.FilesTotal > 0 {
		pct := 100.0
		if p.BytesTotal > 0 {
			pct = 100 * float64(p.Bytes) / float64(p.BytesTotal)
		}
		fmt.Fprintf(&b, " %3.0f%%  %s of %s, %d of %d file(s)", pct, deploy.HumanSize(p.Bytes), deploy.HumanSize(p.BytesTotal), p.Files, p.FilesTotal)
		if secs := p.Elapsed.Seconds(); secs > 0 && p.Bytes > 0 {
			rate := float64(p.Bytes) / secs
			fmt.Fprintf(&b, ", %s/s", deploy.HumanSize(int64(rate)))
			if left := p.BytesTotal - p.Bytes; left > 0 && !p.Done {
				fmt.Fprintf(&b, ", ETA %s", time.Duration(float64(left)/rate*float64(time.Second)).Round(time.Second))
			}
		}
	}
	if p.Done {
		fmt.Fprintf(&b, "  done in %s", p.Elapsed.Round(10*time.Millisecond))
	} else {
		fmt.Fprintf(&b, "  %s", p.Elapsed.Round(time.Second))
	}
	return b.String()
}

// plainProgress prints a line per host at most every plainEvery or plainStep of its upload, never control
// characters: for CI logs.
type plainProgress struct {
	p     *printer
	mu    sync.Mutex
	hosts map[string]*plainState
}

type plainState struct {
	step    string
	printed time.Time
	frac    float64
	any     bool // a line of this step was printed
}

func (v *plainProgress) event(e deploy.Progress) {
	v.mu.Lock()
	st := v.hosts[e.Host]
	if st == nil || st.step != e.Step {
		st = &plainState{step: e.Step, printed: time.Now()}
		v.hosts[e.Host] = st
	}
	frac := 0.0
	if e.BytesTotal > 0 {
		frac = float64(e.Bytes) / float64(e.BytesTotal)
	}
	show := false
	switch {
	case e.Done:
		show = st.any
	case e.Elapsed < plainQuiet && e.BytesTotal < plainBig:
	case time.Since(st.printed) >= plainEvery, e.BytesTotal > 0 && frac-st.frac >= plainStep-1e-9:
		show = true
	}
	if show {
		st.printed, st.frac, st.any = time.Now(), frac, true
	}
	v.mu.Unlock()
	if show {
		v.p.progressLine(e.Host, progressText(e))
	}
}

func (v *plainProgress) stop() {}

// liveProgress draws one line per host in place on a terminal, up to its height, and one line that sums up
// the hosts beyond; remote output lines scroll above them.
type liveProgress struct {
	p       *printer
	bars    *mpb.Progress
	maxBars int
	mu      sync.Mutex
	hosts   map[string]*liveHost
	order   []string
	rest    *mpb.Bar // the summary line, once there are more hosts than lines
}

type liveHost struct {
	bar  *mpb.Bar // nil beyond maxBars
	text string
	done bool
}

func newLiveProgress(p *printer, rows int) *liveProgress {
	v := &liveProgress{p: p, maxBars: max(rows-2, 1), hosts: map[string]*liveHost{}}
	v.bars = mpb.New(mpb.WithOutput(p.out), mpb.WithWidth(1), mpb.WithRefreshRate(150*time.Millisecond), mpb.WithAutoRefresh())
	return v
}

func (v *liveProgress) event(e deploy.Progress) {
	v.mu.Lock()
	defer v.mu.Unlock()
	h := v.hosts[e.Host]
	if h == nil {
		h = &liveHost{}
		v.hosts[e.Host] = h
		v.order = append(v.order, e.Host)
		if len(v.order) <= v.maxBars {
			name := fmt.Sprintf("%-*s ", v.p.width, e.Host)
			h.bar = v.bars.New(0, mpb.NopStyle(), mpb.PrependDecorators(decor.Name(name), decor.Any(func(decor.Statistics) string {
				v.mu.Lock()
				defer v.mu.Unlock()
				return h.text
			})))
		} else if v.rest == nil {
			v.rest = v.bars.New(0, mpb.NopStyle(), mpb.PrependDecorators(decor.Any(func(decor.Statistics) string {
				v.mu.Lock()
				defer v.mu.Unlock()
				return v.restText()
			})))
		}
	}
	h.text, h.done = progressText(e), e.Done
}

// restText sums up the hosts without a line of their own.
func (v *liveProgress) restText() string {
	steps := map[string]int{}
	var names []string
	for _, name := range v.order[v.maxBars:] {
		st := strings.Fields(v.hosts[name].text + " ?")[0]
		if steps[st] == 0 {
			names = append(names, st)
		}
		steps[st]++
	}
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%d in %s", steps[n], n)
	}
	return fmt.Sprintf("… %d more host(s): %s", len(v.order)-v.maxBars, strings.Join(parts, ", "))
}

// stop erases the lines and stops drawing, before the results are printed.
func (v *liveProgress) stop() {
	v.mu.Lock()
	bars := []*mpb.Bar{v.rest}
	for _, h := range v.hosts {
		bars = append(bars, h.bar)
	}
	v.mu.Unlock()
	for _, b := range bars {
		if b != nil {
			b.Abort(true)
		}
	}
	v.bars.Wait()
	v.p.mu.Lock()
	v.p.live = nil
	v.p.mu.Unlock()
}

// progressView shows progress events; stop ends it before the final report.
type progressView interface {
	event(deploy.Progress)
	stop()
}

// newProgressView returns the view for mode, or nil for none.
func newProgressView(mode string, rows int, p *printer) progressView {
	switch mode {
	case "live":
		return newLiveProgress(p, rows)
	case "plain":
		return &plainProgress{p: p, hosts: map[string]*plainState{}}
	}
	return nil
}
